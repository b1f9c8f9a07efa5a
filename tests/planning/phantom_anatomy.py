"""An :class:`~alarscrew.anatomy.model.Anatomy` built from the phantom's exact ground truth.

Used to test planning and its CLI independently of the anatomy stage: frame, landmarks and
body loss are the phantom's analytic truth; masks come from its label map (sacrum = codes 25
and 26 minus the lesion; the S1 body = the truth's elliptic cylinder in the S1 frame).
"""

from __future__ import annotations

import numpy as np

from alarscrew.anatomy.model import Anatomy, BodyLoss, Landmark
from alarscrew.phantom import LESION_LABEL, Phantom
from alarscrew.spatial.frame import S1Frame


def s1_body_mask(ph: Phantom) -> np.ndarray:
    """Voxels inside the truth's S1 body cylinder (semi axes in x, y; z_min..z_max)."""
    frame = S1Frame.from_dict(ph.truth["frame"])
    b = ph.truth["body_loss"]["s1_body_frame_mm"]
    ct = ph.ct
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij"), -1)
    f = frame.to_frame_mm(ijk @ ct.affine[:3, :3].T + ct.affine[:3, 3])
    return (((f[..., 0] / b["semi_x"]) ** 2 + (f[..., 1] / b["semi_y"]) ** 2 <= 1.0)
            & (f[..., 2] >= b["z_min"]) & (f[..., 2] <= b["z_max"]))


def anatomy_from_phantom(ph: Phantom, *, empty_sacrum: bool = False) -> Anatomy:
    """Anatomy from the phantom truth (``empty_sacrum`` simulates a scan without sacrum)."""
    lab = np.asarray(ph.labels.array)
    ct = ph.ct
    sacrum = np.isin(lab, [25, 26, LESION_LABEL])
    if empty_sacrum:
        sacrum = np.zeros_like(sacrum)
    masks = {
        "sacrum": sacrum,
        "s1_body": s1_body_mask(ph) & sacrum,
        "lesion": lab == LESION_LABEL,
        "ilium_left": lab == 77,
        "ilium_right": lab == 78,
        "iliac_vessels": np.isin(lab, [65, 66, 67, 68]),
        "canal": lab == 79,
    }
    bl = ph.truth["body_loss"]
    return Anatomy(
        ct=ct,
        frame=S1Frame.from_dict(ph.truth["frame"]),
        landmarks={k: Landmark(k, np.asarray(v, float), 1.0, "phantom truth")
                   for k, v in ph.truth["landmarks"].items()},
        masks={k: ct.with_array(v, is_label=True) for k, v in masks.items()},
        body_loss=BodyLoss(bl["pedicle_level_percent"], bl["volume_percent"], "phantom truth",
                           bl["pedicle_level_percent"] > 50.0),
    )
