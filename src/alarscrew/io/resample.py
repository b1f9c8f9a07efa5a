"""Nearest-neighbour resampling of label maps onto another image's grid.

Label maps are never interpolated: each target voxel takes the code of the source voxel whose
cell (centre +- half a voxel) contains the target voxel's centre. Grids that do not describe
the same physical space are refused with both geometries in the message.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from alarscrew.errors import LabelMapError
from alarscrew.io.image import Image

#: Minimum fraction of the smaller of the two physical extents (label map, CT) that both must
#: share for the label map to be resampled onto the CT grid (otherwise it is refused).
MIN_GRID_OVERLAP = 0.5


def _bbox_ras(img: Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned RAS bounding box of the voxel grid (voxel edges, not centres)."""
    n = np.asarray(img.shape, float)
    corners = np.array(np.meshgrid(*[[-0.5, s - 0.5] for s in n], indexing="ij")).reshape(3, -1).T
    ras = img.ijk_to_ras(corners)
    return ras.min(axis=0), ras.max(axis=0)


def _resample_axis_aligned(src: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                           shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest-neighbour resampling when target axis ``d`` maps to source axis ``d`` alone.

    Source index along axis d of target index ``t`` is ``round(scale[d] * t + offset[d])``
    (half-way rounds up); targets outside the source get 0. Exact and about ten times faster
    than :func:`scipy.ndimage.affine_transform` because it indexes one axis at a time.
    """
    idx, ok = [], []
    for d in range(3):
        i = np.floor(scale[d] * np.arange(shape[d]) + offset[d] + 0.5).astype(np.intp)
        inside = (i >= 0) & (i < src.shape[d])
        idx.append(np.where(inside, i, 0))
        ok.append(inside)
    out = src[np.ix_(*idx)]
    outside = ~(ok[0][:, None, None] & ok[1][None, :, None] & ok[2][None, None, :])
    if outside.any():
        out[outside] = 0
    return out


def resample_labels(label: Image, ct: Image, *, min_overlap: float = MIN_GRID_OVERLAP) -> Image:
    """Put an integer label map on the CT grid, nearest-neighbour.

    Parameters
    ----------
    label : Image
        Integer label map.
    ct : Image
        Target grid.
    min_overlap : float
        Least fraction of the smaller of the two RAS bounding boxes that both must share.

    Returns
    -------
    Image
        ``label`` itself when both grids agree within 1e-3 mm, else a new int32 label map on
        the CT grid (voxels outside the label map are 0).

    Raises
    ------
    LabelMapError
        When the two grids do not describe the same physical space; both geometries are given.
    """
    if label.same_grid(ct):
        return label
    lo_l, hi_l = _bbox_ras(label)
    lo_c, hi_c = _bbox_ras(ct)
    inter = np.clip(np.minimum(hi_l, hi_c) - np.maximum(lo_l, lo_c), 0, None)
    # relative to the smaller extent: a label map of the whole scan fits a cropped CT
    frac = float(np.prod(inter) / min(np.prod(hi_l - lo_l), np.prod(hi_c - lo_c)))
    if frac < min_overlap:
        raise LabelMapError(
            f"label map does not fit the CT: only {100 * frac:.0f}% of the smaller extent "
            f"overlaps (at least {100 * min_overlap:.0f}% needed). Label map: "
            f"{label.grid_description()}; CT ({ct.source or 'CT'}): {ct.grid_description()}. "
            "Was it made from another scan?", path=label.source or "label map")
    mat = np.linalg.inv(label.affine) @ ct.affine
    src = np.asarray(label.array)
    if src.dtype == bool:
        src = src.astype(np.uint8)
    lin = mat[:3, :3]
    if np.allclose(lin - np.diag(np.diag(lin)), 0.0, atol=1e-9):
        out = _resample_axis_aligned(src, np.diag(lin), mat[:3, 3], ct.shape)
    else:  # "grid-constant": a voxel covers +-0.5 around its centre ("constant" drops that rim)
        out = ndimage.affine_transform(
            src, lin, offset=mat[:3, 3], output_shape=ct.shape, order=0,
            mode="grid-constant", cval=0, output=src.dtype)
    meta = dict(label.meta)
    meta["resampled_from"] = label.grid_description()
    return Image(out, ct.affine, is_label=True, source=label.source, meta=meta)
