"""S1 body destroyed (the reference paper's indication) with an S1 label and no lesion mask.

Provenance: ``make_phantom(body_destruction_percent=P)`` (analytic truth: frame, body loss by
quadrature). The phantom's labels code the destroyed part as 200 and the remaining S1 as 26.
Tolerances: frame within 2 deg / 2 mm, body loss at the pedicle level within 5 points (issue 3).
Found by review: before the S1 label joined the shape used for the frame, the endplate fit
tilted 41-50 deg onto the defect and the loss read 7-13 % for a true 50-70 %, silently.
"""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.anatomy import analyze_anatomy
from alarscrew.errors import AnatomyNotFoundError
from alarscrew.phantom import make_phantom
from alarscrew.spatial.frame import S1Frame


def _labels(ph, s1_codes: tuple[int, ...]) -> dict:
    lab = ph.labels
    return {"s1": lab.with_array(np.isin(lab.array, s1_codes), is_label=True),
            "l5": lab.with_array(lab.array == 27, is_label=True)}


@pytest.mark.parametrize("percent", [50.0, 70.0])
def test_s1_label_covering_the_defect_gives_frame_and_loss(percent: float) -> None:
    ph = make_phantom(body_destruction_percent=percent, voxel_mm=2.0)
    an = analyze_anatomy(ph.ct, labels=_labels(ph, (26, 200)))
    truth = S1Frame.from_dict(ph.truth["frame"])
    cos = float(np.clip(an.frame.cranial_ras @ truth.cranial_ras, -1.0, 1.0))
    assert np.degrees(np.arccos(cos)) <= 2.0
    assert np.linalg.norm(an.frame.origin_ras_mm - truth.origin_ras_mm) <= 2.0
    assert an.body_loss.method.startswith("estimated from CT")
    assert an.body_loss.pedicle_level_percent == pytest.approx(
        ph.truth["body_loss"]["pedicle_level_percent"], abs=5.0)
    # the paper's indication is > 50 %; 50 % itself sits on the threshold
    if percent > 55.0:
        assert an.body_loss.indication_met is True


def test_s1_label_without_the_defect_is_refused_not_tilted() -> None:
    """The bone-only S1 label leaves a cratered top: the endplate is not flat -> loud refusal."""
    ph = make_phantom(body_destruction_percent=70.0, voxel_mm=2.0)
    with pytest.raises(AnatomyNotFoundError, match=r"not flat.*--lesion"):
        analyze_anatomy(ph.ct, labels=_labels(ph, (26,)))


def test_with_a_lesion_mask_the_same_case_works() -> None:
    ph = make_phantom(body_destruction_percent=70.0, voxel_mm=2.0)
    labels = _labels(ph, (26,)) | {"lesion": ph.lesion}
    an = analyze_anatomy(ph.ct, labels=labels)
    assert an.body_loss.indication_met is True
    assert an.body_loss.pedicle_level_percent == pytest.approx(
        ph.truth["body_loss"]["pedicle_level_percent"], abs=5.0)


@pytest.mark.parametrize(("voxel_mm", "percent"), [(1.0, 30.0), (1.5, 85.0), (2.0, 60.0)])
def test_ct_only_destroyed_body_is_refused_not_taken_for_l5(voxel_mm: float,
                                                             percent: float) -> None:
    """CT-only, the automatic seed lands in L5 above a destroyed S1 body. Found by a parameter
    sweep (2026-11-23): at 1.5 mm / 85 % the L5 region passed the seed check (no midline bone
    right below it: the body is gone), its top was fitted as the S1 endplate 36.5 mm above the
    true one and the body loss read 0 % for a true 85 %, silently. Every case must be refused:
    by the seed check, or by the sacral-depth check (the region ends 29 mm below its
    endplate, with 20 cm3 of midline bone below it)."""
    ph = make_phantom(voxel_mm=voxel_mm, body_destruction_percent=percent)
    with pytest.raises(AnatomyNotFoundError, match=r"L5|lumbar|more midline bone below"):
        analyze_anatomy(ph.ct)


@pytest.mark.parametrize("with_lesion", [False, True])
def test_the_depth_check_names_l5(with_lesion: bool) -> None:
    """Also with the lesion mask supplied (the paper's case): the lesion, united with the bone
    for the frame, used to carry the L5 region down across the disc past the depth check,
    and the run gave the L5 frame (origin 25 mm too cranial) and 0 % loss for 85 %."""
    ph = make_phantom(voxel_mm=1.5, body_destruction_percent=85.0)
    labels = {"lesion": ph.lesion} if with_lesion else None
    with pytest.raises(AnatomyNotFoundError, match=r"ends \d+ mm below.*probably L5.*--seg"):
        analyze_anatomy(ph.ct, labels=labels)
