"""Label maps: a registry of label schemes, scheme detection, and masks on the CT grid.

Every scheme lives in one JSON file under ``alarscrew/data/label_schemes/`` (the single source
of truth; CLI choices come from :func:`available_schemes`). A scheme maps *canonical structure
names* (:data:`CANONICAL_STRUCTURES`) to the integer codes of a multilabel map
(``kind: multilabel``) or to the file names of a folder of binary masks (``kind: masks``).
A user scheme is a JSON mapping such as ``{"sacrum": [25], "l5": 27}``.

:func:`load_labels` reads one or more label files, detects the scheme of each unless told,
resamples them nearest-neighbour onto the CT grid when their grid differs but covers the same
physical space (:func:`alarscrew.io.resample.resample_labels`), and returns boolean masks by
canonical name (union over files). 3D Slicer ``.seg.nrrd`` files are matched by segment name.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path

import numpy as np
from scipy import ndimage

from alarscrew.errors import InputError, LabelMapError
from alarscrew.io.image import Image
from alarscrew.io.resample import MIN_GRID_OVERLAP, resample_labels

__all__ = [
    "CANONICAL_STRUCTURES",
    "MIN_GRID_OVERLAP",
    "LabelScheme",
    "SchemeDetection",
    "available_schemes",
    "describe_labels",
    "detect_scheme",
    "get_scheme",
    "load_labels",
    "resample_labels",
    "scheme_from_mapping",
    "scheme_from_segment_names",
]

logger = logging.getLogger(__name__)

#: Structure names a label map can provide, as used by the anatomy stage.
CANONICAL_STRUCTURES: tuple[str, ...] = (
    "sacrum", "s1", "l5", "l4", "l3", "l2", "l1", "hip_left", "hip_right",
    "iliac_artery_left", "iliac_artery_right", "iliac_vena_left", "iliac_vena_right",
    "spinal_cord", "femur_left", "femur_right", "lesion",
)

#: Vertebrae from cranial to caudal; used to check that a scheme stacks them in that order.
_CRANIOCAUDAL: tuple[str, ...] = ("l1", "l2", "l3", "l4", "l5", "s1", "sacrum")
_LEFT_RIGHT: tuple[tuple[str, str], ...] = (
    ("hip_left", "hip_right"), ("femur_left", "femur_right"),
    ("iliac_artery_left", "iliac_artery_right"), ("iliac_vena_left", "iliac_vena_right"),
)

_MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr")


@dataclass(frozen=True)
class LabelScheme:
    """One label scheme of the registry (or a user mapping).

    Attributes
    ----------
    name : str
        Registry name (``totalseg_v2``...) or ``custom:<file>``.
    kind : str
        ``multilabel`` (integer codes in one file) or ``masks`` (one binary file per structure).
    structures : dict of str to tuple of int
        Canonical name -> codes (multilabel).
    files : dict of str to tuple of str
        Canonical name -> accepted file stems (masks).
    labels : dict of int to str
        Every code the scheme defines (multilabel), for detection and messages.
    """

    name: str
    kind: str
    description: str = ""
    reference: str = ""
    structures: dict[str, tuple[int, ...]] = field(default_factory=dict)
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    alias_of: str | None = None
    warnings: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SchemeDetection:
    """Which scheme was chosen for a label file, and why."""

    scheme: str
    detected: bool
    reason: str
    scores: dict[str, float] = field(default_factory=dict)


def _scheme_dir() -> resources.abc.Traversable:
    return resources.files("alarscrew").joinpath("data", "label_schemes")


@cache
def _registry() -> dict[str, LabelScheme]:
    out: dict[str, LabelScheme] = {}
    for entry in sorted(_scheme_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        raw = json.loads(entry.read_text(encoding="utf-8"))
        out[raw["name"]] = LabelScheme(
            name=raw["name"],
            kind=raw["kind"],
            description=raw.get("description", ""),
            reference=raw.get("reference", ""),
            structures={k: tuple(v) for k, v in raw.get("structures", {}).items()},
            files={k: tuple(v) for k, v in raw.get("files", {}).items()},
            labels={int(k): v for k, v in raw.get("labels", {}).items()},
            alias_of=raw.get("alias_of"),
            warnings={int(k): v for k, v in raw.get("warnings", {}).items()},
        )
    for name, s in list(out.items()):
        if s.alias_of is not None:
            base = out[s.alias_of]
            out[name] = LabelScheme(name=name, kind=base.kind, description=s.description,
                                    reference=s.reference, structures=base.structures,
                                    files=base.files, labels=base.labels, alias_of=s.alias_of,
                                    warnings=base.warnings)
    return out


def available_schemes() -> tuple[str, ...]:
    """Names of the registered label schemes (sorted), e.g. for CLI choices."""
    return tuple(sorted(_registry()))


def get_scheme(name: str) -> LabelScheme:
    """The registered scheme called ``name``.

    Raises
    ------
    InputError
        For an unknown name; the message lists the known ones.
    """
    reg = _registry()
    if name not in reg:
        raise InputError(f"unknown label scheme '{name}'; expected one of "
                         f"{', '.join(sorted(reg))} or a JSON mapping file", column="scheme")
    return reg[name]


def scheme_from_mapping(path: str | os.PathLike[str]) -> LabelScheme:
    """Read a user JSON mapping ``{"sacrum": [25], "l5": 27, ...}`` as a multilabel scheme.

    Keys must be canonical structure names; values a positive integer or a list of them.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError("label mapping file not found", path=str(p)) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable JSON mapping ({exc})", path=str(p)) from exc
    if not isinstance(raw, dict) or not raw:
        raise InputError('expected a JSON object such as {"sacrum": [25], "l5": [27]}',
                         path=str(p))
    structures: dict[str, tuple[int, ...]] = {}
    for key, val in raw.items():
        if key not in CANONICAL_STRUCTURES:
            raise InputError(f"unknown structure name; expected one of "
                             f"{', '.join(CANONICAL_STRUCTURES)}", path=str(p), column=key)
        vals = val if isinstance(val, list) else [val]
        if not vals or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                               for v in vals):
            raise InputError(f"expected a positive integer label or a list of them, got "
                             f"{val!r}", path=str(p), column=key)
        structures[key] = tuple(vals)
    labels = {c: name for name, codes in structures.items() for c in codes}
    return LabelScheme(name=f"custom:{p.name}", kind="multilabel",
                       description=f"user mapping {p}", structures=structures, labels=labels)


def _present_codes(arr: np.ndarray) -> np.ndarray:
    """Sorted non-zero codes present in a label array.

    Integer maps are counted with ``np.bincount`` slab by slab along the last axis, so no sort
    of all voxels and no full-size int64 temporary is needed.
    """
    a = np.asarray(arr)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= 1_000_000:
        codes = np.unique(a)
        return codes[codes != 0]
    seen = np.zeros(int(a.max()) + 1, dtype=bool)
    step = max(1, 4_000_000 // max(1, a[..., 0].size))
    for k0 in range(0, a.shape[-1], step):
        slab = a[..., k0:k0 + step]
        seen |= np.bincount(slab.ravel(order="K"), minlength=seen.size) > 0
    seen[0] = False
    return np.flatnonzero(seen)


def _mask_of(arr: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """Boolean mask of the voxels holding any of ``codes`` (equality tests: no index copies)."""
    mask = arr == codes[0]
    for c in codes[1:]:
        mask |= arr == c
    return mask


#: Voxel stride used to compute centroids during scheme detection (speed; centroids only
#: decide cranio-caudal and left-right order, so a 2-voxel stride is ample).
_DETECTION_STRIDE = 2


def _centroid_ras(arr: np.ndarray, affine: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """RAS centroid of the voxels holding any of ``codes``, on a strided grid (NaN when none)."""
    st = _DETECTION_STRIDE
    mask = _mask_of(arr[::st, ::st, ::st], list(codes))
    if not mask.any():
        return np.full(3, np.nan)
    ijk = np.array(ndimage.center_of_mass(mask)) * st
    return affine[:3, :3] @ ijk + affine[:3, 3]


def _normalise_name(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


@cache
def _name_aliases() -> dict[str, str]:
    """Normalised structure names (canonical, TotalSegmentator, plain-English) -> canonical."""
    out: dict[str, str] = {}
    for canon in CANONICAL_STRUCTURES:
        out[canon] = canon
        for side in ("left", "right"):
            if canon.endswith(f"_{side}"):
                base = canon[: -len(side) - 1]
                out[f"{side}_{base}"] = canon
        if canon[0] in "ls" and canon[1:].isdigit():
            for form in ("vertebra_{}", "vertebrae_{}", "{}_vertebra"):
                out[form.format(canon)] = canon
    for canon, stems in _registry()["totalseg_masks"].files.items():
        for stem in stems:
            out[_normalise_name(stem)] = canon
    return out


def scheme_from_segment_names(segments: dict[int, str], *, source: str) -> LabelScheme:
    """A multilabel scheme from named segments (3D Slicer ``.seg.nrrd``).

    Names are matched after lower-casing and turning spaces/hyphens into underscores, against
    canonical names (``sacrum``, ``l5``, ``hip_left``), their plain forms (``left hip``,
    ``L5 vertebra``) and TotalSegmentator names (``vertebrae_L5``). Other segments are ignored.

    Raises
    ------
    LabelMapError
        When no segment name matches a known structure.
    """
    aliases = _name_aliases()
    structures: dict[str, list[int]] = {}
    for value, name in sorted(segments.items()):
        canon = aliases.get(_normalise_name(name))
        if canon is not None:
            structures.setdefault(canon, []).append(value)
    if not structures:
        raise LabelMapError(
            f"no segment name matches a structure alarscrew uses; segments: "
            f"{', '.join(segments.values())}; expected names such as "
            f"{', '.join(CANONICAL_STRUCTURES[:7])} or a JSON mapping", path=source)
    return LabelScheme(name="slicer_segments", kind="multilabel",
                       description="3D Slicer segment names",
                       structures={k: tuple(v) for k, v in structures.items()},
                       labels=dict(segments))


def _score(scheme: LabelScheme, codes: np.ndarray, img: Image) -> tuple[float, str]:
    """Plausibility score of reading ``img`` (with unique non-zero ``codes``) with ``scheme``.

    Unknown codes disqualify (-inf). Otherwise: one point per canonical structure present,
    +1 per pair of vertebrae stacked cranio-caudally in the right order and per left/right
    pair on the right side (RAS x of left < right), -3 per pair in the wrong order.
    """
    unknown = sorted(set(codes.tolist()) - set(scheme.labels))
    if unknown:
        return float("-inf"), f"codes {unknown[:5]} not in the scheme"
    present = {n: c for n, c in scheme.structures.items() if np.isin(c, codes).any()}
    score = float(len(present))
    cents = {n: _centroid_ras(img.array, img.affine, c) for n, c in present.items()}
    vert = [n for n in _CRANIOCAUDAL if n in cents]
    good = bad = 0
    for up, down in pairwise(vert):
        if up == "s1" and down == "sacrum":
            continue  # S1 is part of the sacrum: no order between them
        if np.isnan(cents[up][2]) or np.isnan(cents[down][2]):
            continue  # too small to place on the strided grid
        ok = cents[up][2] > cents[down][2]
        good, bad = good + ok, bad + (not ok)
    for left, right in _LEFT_RIGHT:
        if left in cents and right in cents and not np.isnan(cents[left][0] + cents[right][0]):
            ok = cents[left][0] < cents[right][0]
            good, bad = good + ok, bad + (not ok)
    score += good - 3 * bad
    return score, f"{len(present)} structures ({', '.join(present)}), {bad} order violations"


def detect_scheme(label: Image, *, codes: np.ndarray | None = None) -> SchemeDetection:
    """Choose the multilabel scheme that best explains a label map.

    Every registered multilabel scheme (aliases excluded) is scored by :func:`_score`.

    Raises
    ------
    LabelMapError
        When no scheme finds any structure, or two schemes tie.
    """
    codes = _present_codes(label.array) if codes is None else np.asarray(codes)
    where = label.source or "label map"
    if codes.size == 0:
        raise LabelMapError("label map is empty (all zeros)", path=where)
    scores: dict[str, float] = {}
    reasons: dict[str, str] = {}
    for name, scheme in _registry().items():
        if scheme.kind != "multilabel" or scheme.alias_of is not None:
            continue
        scores[name], reasons[name] = _score(scheme, codes, label)
    ranked = sorted(scores, key=lambda n: scores[n], reverse=True)
    best = ranked[0]
    shown = ", ".join(str(int(c)) for c in codes[:12]) + (" ..." if codes.size > 12 else "")
    if not np.isfinite(scores[best]) or scores[best] <= 0:
        raise LabelMapError(
            f"no known label scheme explains codes [{shown}] as any structure alarscrew uses "
            f"({', '.join(CANONICAL_STRUCTURES[:9])}...); pass scheme= (one of "
            f"{', '.join(available_schemes())}) or a JSON mapping", path=where)
    if len(ranked) > 1 and scores[ranked[1]] == scores[best]:
        raise LabelMapError(
            f"codes [{shown}] fit schemes '{best}' and '{ranked[1]}' equally well; pass "
            "scheme= explicitly", path=where)
    reason = f"{reasons[best]}; score {scores[best]:g} vs " + ", ".join(
        f"{n} {scores[n]:g}" for n in ranked[1:])
    return SchemeDetection(best, True, reason, scores)


def _mask_name(path: Path, scheme: LabelScheme) -> str | None:
    name = path.name
    for suf in _MASK_SUFFIXES:
        if name.lower().endswith(suf):
            stem = name[: -len(suf)]
            break
    else:
        return None
    for canon, stems in scheme.files.items():
        if stem in stems:
            return canon
    return None


def _read_label(path: Path) -> Image:
    """Load a label file; loader errors are re-raised as :class:`LabelMapError`."""
    from alarscrew.errors import ImageError
    from alarscrew.io.loading import load_image

    try:
        return load_image(path, is_label=True)
    except LabelMapError:
        raise
    except ImageError as exc:
        raise LabelMapError(exc.reason, path=exc.path or str(path)) from exc


def _load_masks(path: Path, ct: Image, scheme: LabelScheme) -> dict[str, np.ndarray]:
    """Masks from a folder of binary files (or one binary file) named by structure."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    out: dict[str, np.ndarray] = {}
    for f in files:
        canon = _mask_name(f, scheme)
        if canon is None:
            continue
        img = resample_labels(_read_label(f), ct)
        vals = _present_codes(img.array)
        if not set(vals.tolist()) <= {1}:
            raise LabelMapError(f"a structure mask must hold only 0 and 1, found values "
                                f"{vals[:8].tolist()}", path=str(f))
        out[canon] = out.get(canon, np.zeros(ct.shape, bool)) | (img.array == 1)
    if not out:
        expected = ", ".join(sorted({s for v in scheme.files.values() for s in v})[:8])
        raise LabelMapError(f"no structure mask found; expected files such as {expected} "
                            "(.nii.gz)", path=str(path))
    return out


def _is_mask_file(path: Path, codes: np.ndarray) -> bool:
    masks = _registry()["totalseg_masks"]
    return _mask_name(path, masks) is not None and set(codes.tolist()) <= {1}


def _masks_from_path(
    p: Path, ct: Image, forced: LabelScheme | None
) -> tuple[LabelScheme, SchemeDetection, dict[str, np.ndarray], dict[str, list[int]], list[str]]:
    """Masks on the CT grid from one label file or folder.

    Returns the scheme used, how it was chosen, the masks and codes by structure, and warnings.
    """
    if not p.exists():
        raise LabelMapError("label file or folder not found", path=str(p))
    if p.is_dir() or (forced is not None and forced.kind == "masks"):
        use = forced if forced is not None else get_scheme("totalseg_masks")
        if use.kind != "masks":
            raise LabelMapError(f"scheme '{use.name}' is a multilabel scheme but a folder "
                                "was given", path=str(p))
        det = SchemeDetection(use.name, forced is None, "a folder of structure masks")
        found = _load_masks(p, ct, use)
        return use, det, found, {key: [1] for key in found}, []
    img = _read_label(p)
    codes = _present_codes(img.array)
    present = set(codes.tolist())
    if forced is None and _is_mask_file(p, codes):
        use = get_scheme("totalseg_masks")
        det = SchemeDetection(use.name, True, "a binary mask named by its structure")
        found = _load_masks(p, ct, use)
        return use, det, found, {key: [1] for key in found}, []
    if forced is not None:
        use = forced
        det = SchemeDetection(use.name, False, "given by the caller")
        extra = sorted(present - set(use.labels))
        if extra and use.name.startswith("custom:"):
            logger.info("codes %s of %s are not in the mapping; ignored", extra, p)
        elif extra:
            raise LabelMapError(f"codes {extra[:8]} are not defined by scheme '{use.name}'; "
                                "is this the right scheme?", path=str(p))
    elif img.meta.get("segments"):
        use = scheme_from_segment_names(img.meta["segments"], source=str(p))
        det = SchemeDetection(use.name, True, "3D Slicer segment names: " + ", ".join(
            f"{segs} -> {name}" for name, segs in use.structures.items()))
    else:
        det = detect_scheme(img, codes=codes)
        use = get_scheme(det.scheme)
    notes = []
    for code, text in use.warnings.items():
        if code in present:
            logger.warning("%s: %s", p, text)
            notes.append(f"{p}: {text}")
    on_ct = resample_labels(img, ct)
    here = present if on_ct is img else set(_present_codes(on_ct.array).tolist())
    found: dict[str, np.ndarray] = {}
    per_code: dict[str, list[int]] = {}
    for name, struct_codes in use.structures.items():
        hit = [c for c in struct_codes if c in here]
        if hit:
            found[name], per_code[name] = _mask_of(on_ct.array, hit), hit
    return use, det, found, per_code, notes


def load_labels(
    paths: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    ct: Image,
    *,
    scheme: str | None = None,
    mapping: str | os.PathLike[str] | None = None,
) -> dict[str, Image]:
    """Read label files and return boolean masks on the CT grid by canonical structure name.

    Parameters
    ----------
    paths : sequence of path-like (or one path)
        Multilabel files (NIfTI/NRRD), 3D Slicer segmentations (``.seg.nrrd``, matched by
        segment name), folders of structure masks (TotalSegmentator layout), or single binary
        masks named by structure (``sacrum.nii.gz``, ``lesion.nii.gz``).
        Several files are united structure by structure.
    ct : Image
        The CT whose grid the masks are put on.
    scheme : str, optional
        A registered scheme (:func:`available_schemes`); detected per file when omitted.
    mapping : path-like, optional
        A user JSON mapping (see :func:`scheme_from_mapping`); excludes ``scheme``.

    Returns
    -------
    dict of str to Image
        Bool masks (``is_label=True``) for the structures present, in
        :data:`CANONICAL_STRUCTURES` order. ``meta`` holds ``schemes`` (file -> scheme),
        ``scheme_detected`` and ``detection`` (why), ``sources``, ``codes`` and ``warnings``
        (e.g. a VerSe L6). :func:`describe_labels` turns this into lines for a console.

    Raises
    ------
    LabelMapError
        Unreadable or non-integer maps, unknown codes, an undetectable scheme, or a map that does
        not fit the CT.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise InputError("no label file given", column="seg")
    if scheme is not None and mapping is not None:
        raise InputError("give either a scheme name or a mapping file, not both",
                         column="scheme")
    forced = scheme_from_mapping(mapping) if mapping is not None else (
        get_scheme(scheme) if scheme is not None else None)
    union: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {n: {"sources": [], "schemes": {}, "codes": []}
                             for n in CANONICAL_STRUCTURES}
    detections: dict[str, SchemeDetection] = {}
    warnings: list[str] = []
    for raw in paths:
        p = Path(raw)
        use, det, found, per_code, notes = _masks_from_path(p, ct, forced)
        warnings.extend(notes)
        detections[str(p)] = det
        word = "detected" if det.detected else "given"
        logger.info("label scheme %s (%s) for %s: %s", use.name, word, p, det.reason)
        for name, m in found.items():
            union[name] = union[name] | m if name in union else m
            info[name]["sources"].append(str(p))
            info[name]["schemes"][str(p)] = use.name
            info[name]["codes"].extend(per_code[name])
    out: dict[str, Image] = {}
    for name in CANONICAL_STRUCTURES:
        if name in union and union[name].any():
            meta = {
                "structure": name,
                "sources": info[name]["sources"],
                "schemes": info[name]["schemes"],
                "codes": sorted(set(info[name]["codes"])),
                "scheme_detected": {s: detections[s].detected for s in info[name]["sources"]},
                "detection": {s: detections[s].reason for s in info[name]["sources"]},
                "warnings": list(warnings),
            }
            out[name] = Image(union[name], ct.affine, is_label=True,
                              source=f"{name} from {', '.join(info[name]['sources'])}",
                              meta=meta)
    if not out:
        raise LabelMapError("no known structure in the label file(s) overlaps the CT",
                            path=", ".join(str(p) for p in paths))
    return out


def describe_labels(masks: dict[str, Image]) -> list[str]:
    """Lines saying which scheme was used for each label file, and why, for a console summary.

    Parameters
    ----------
    masks : dict of str to Image
        As returned by :func:`load_labels`.

    Returns
    -------
    list of str
        One line per label file (``file: scheme NAME detected|given (reason); structures``),
        then one line per warning.
    """
    per_file: dict[str, dict] = {}
    warnings: list[str] = []
    for name, img in masks.items():
        for src in img.meta.get("sources", []):
            entry = per_file.setdefault(src, {
                "scheme": img.meta["schemes"][src],
                "detected": img.meta["scheme_detected"][src],
                "reason": img.meta["detection"][src],
                "structures": [],
            })
            entry["structures"].append(name)
        warnings.extend(w for w in img.meta.get("warnings", []) if w not in warnings)
    lines = [
        f"{src}: scheme {e['scheme']} {'detected' if e['detected'] else 'given'} "
        f"({e['reason']}); structures: {', '.join(e['structures'])}"
        for src, e in per_file.items()
    ]
    return lines + [f"warning: {w}" for w in warnings]
