"""Everything the planner samples, computed once per scan: distance fields, HU, estimates.

:func:`build_context` takes plain arrays (CT, bool masks on the CT grid, the S1 frame and
landmark points), crops a box around the sacrum and precomputes every field the evaluation and
the search need, so that a trajectory costs only trilinear samples afterwards.

Estimated structures (used only when no label is available, always marked ``estimated``):

- iliac vessels: the common iliac artery and vein and the middle sacral vessels lie in front
  of the S1 segment (Fang et al. 2022, Discussion). Without a vessel label they are modelled
  as lying directly on the anterior sacral cortex above ``VESSEL_CRANIAL_MIN_MM`` (S1 level):
  the reported distance is then the distance to that cortex, a lower bound.
- L5 nerve root: it crosses the anterior surface of the ala (Fang 2022). Modelled as the
  anterior alar cortex between ``ROOT_LATERAL_MM`` lateral of the midline and between
  ``ROOT_CRANIAL_MM`` along the cranial axis (a modelling choice, not a measured nerve).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from alarscrew.errors import AnatomyNotFoundError
from alarscrew.io.image import Image
from alarscrew.planning.fields import (
    GridField,
    check_mask_grid,
    crop_slices,
    cropped_affine,
    signed_distance_mm,
)
from alarscrew.spatial.frame import S1Frame

#: Crop margin around the sacrum (mm) of the distance fields.
CROP_PAD_MM = 15.0
#: Estimated vessel surface: anterior sacral cortex at or above this S1-frame height (mm).
VESSEL_CRANIAL_MIN_MM = -40.0
#: Estimated L5 root band on the anterior ala: |lateral| range and cranial range (mm, S1 frame).
ROOT_LATERAL_MM = (15.0, 40.0)
ROOT_CRANIAL_MM = (-30.0, 5.0)
#: Outward-normal threshold (cosine with the anterior axis) for 'anterior surface'.
ANTERIOR_COS = 0.5
#: 'Anterior surface' also lies no more than this far behind the frame origin (S1 frame mm).
ANTERIOR_MIN_MM = -10.0


@dataclass(frozen=True, eq=False)
class PointSet:
    """Voxel centres of a structure (world RAS mm) with an exact nearest-point query.

    Parameters
    ----------
    points_ras_mm : (N, 3) ndarray
        N >= 1.
    half_voxel_mm : float
        Half the smallest voxel size: voxel centres lie that far inside the structure's
        surface, so :meth:`distance_mm` subtracts it (negative inside the structure).
    """

    points_ras_mm: np.ndarray
    half_voxel_mm: float

    def __post_init__(self) -> None:
        from scipy.spatial import cKDTree

        pts = np.asarray(self.points_ras_mm, float).reshape(-1, 3)
        if len(pts) == 0:
            raise AnatomyNotFoundError("empty structure: no voxel to measure distances to")
        object.__setattr__(self, "points_ras_mm", pts)
        object.__setattr__(self, "_tree", cKDTree(pts))

    def distance_mm(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Distance (mm) from points (..., 3) to the structure's surface."""
        p = np.asarray(xyz_ras_mm, float)
        d = self._tree.query(p.reshape(-1, 3))[0]  # type: ignore[attr-defined]
        return (d - self.half_voxel_mm).reshape(p.shape[:-1])


def _voxel_points(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World RAS mm (N, 3) of the True voxels of ``mask``."""
    return np.argwhere(mask).astype(float) @ affine[:3, :3].T + affine[:3, 3]


@dataclass(frozen=True, eq=False)
class PlanningContext:
    """Precomputed fields of one scan (all on one cropped grid).

    Attributes
    ----------
    ct : Image
        The CT (full grid), for reference and figures.
    frame : S1Frame
    landmarks : dict[str, (3,) ndarray]
        Landmark points, world RAS mm (names as in ``alarscrew.anatomy.model``).
    bone : GridField
        Signed distance (mm) to the usable sacrum (sacrum minus lesion), positive inside.
    clearance : GridField
        ``min(bone, -distance into the S1 body)``: what a safe alar screw must keep positive.
    hu : GridField
        CT attenuation (HU).
    vessels : PointSet
        Iliac vessel voxels (label, whole scan) or, without a label, the estimated vessel
        surface (anterior sacral cortex at S1); see :meth:`vessel_distance_mm`.
    vessels_estimated : bool
        True when :attr:`vessels` is the estimate.
    root : PointSet or None
        Estimated L5 root band on the anterior ala (surface voxels); see
        :meth:`root_distance_mm`.
    ilium : PointSet or None
        Iliac bone voxels (both sides, within the crop), when labelled.
    sacroiliac : GridField or None
        Signed distance to sacrum union ilium (S2-alar-iliac corridor), when ilium is labelled.
    canal : PointSet or None
        Spinal canal voxels, when labelled.
    sources : dict[str, str]
        How each structure was obtained ('label' or 'estimated: ...').
    """

    ct: Image
    frame: S1Frame
    landmarks: dict[str, np.ndarray]
    bone: GridField
    clearance: GridField
    hu: GridField
    vessels: PointSet
    vessels_estimated: bool
    root: PointSet | None
    ilium: PointSet | None
    sacroiliac: GridField | None
    canal: PointSet | None
    sources: dict[str, str] = field(default_factory=dict)

    def vessel_distance_mm(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Distance (mm) from points (N, 3) to the vessels' surface.

        Exact (k-d tree over every labelled vessel voxel, minus half a voxel) when labelled.
        Estimated vessels lie on the bone surface, so no point is nearer to them than to that
        surface: ``max(distance to the band, signed distance into the bone)``.
        """
        p = np.asarray(xyz_ras_mm, float).reshape(-1, 3)
        d = self.vessels.distance_mm(p)
        return np.maximum(d, self.bone.sample(p)) if self.vessels_estimated else d

    def root_distance_mm(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Distance (mm) from points (N, 3) to the estimated L5 root band (NaN without one)."""
        p = np.asarray(xyz_ras_mm, float).reshape(-1, 3)
        if self.root is None:
            return np.full(len(p), np.nan)
        return np.maximum(self.root.distance_mm(p), self.bone.sample(p))

    def point(self, name: str) -> np.ndarray | None:
        """Landmark position (RAS mm) or None."""
        p = self.landmarks.get(name)
        return None if p is None else np.asarray(p, float)

    def outward_normal(self, xyz_ras_mm: np.ndarray, *, h_mm: float = 1.0) -> np.ndarray:
        """Unit outward normal of the bone surface near points (..., 3) (central differences)."""
        p = np.asarray(xyz_ras_mm, float)
        grad = np.stack([
            self.bone.sample(p + h_mm * e) - self.bone.sample(p - h_mm * e)
            for e in np.eye(3)
        ], axis=-1)
        n = -grad
        norm = np.linalg.norm(n, axis=-1, keepdims=True)
        return np.where(norm > 1e-9, n / np.maximum(norm, 1e-12), 0.0)


def _surface_normals(sd: np.ndarray, ijk: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Outward unit normals (N, 3) in RAS of a signed-distance grid at voxels ``ijk`` (N, 3).

    Central differences (one-sided at the array border, as ``np.gradient``), converted from
    index to world space with ``grad_x = A^-T grad_ijk``.
    """
    g = np.empty((ijk.shape[0], 3))
    shape = np.asarray(sd.shape)
    for ax in range(3):
        lo, hi = ijk.copy(), ijk.copy()
        lo[:, ax] = np.maximum(ijk[:, ax] - 1, 0)
        hi[:, ax] = np.minimum(ijk[:, ax] + 1, shape[ax] - 1)
        g[:, ax] = (sd[tuple(hi.T)] - sd[tuple(lo.T)]) / np.maximum(hi[:, ax] - lo[:, ax], 1)
    n = -(g @ np.linalg.inv(affine[:3, :3]))
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def build_context(ct: Image, masks: dict[str, Image], frame: S1Frame,
                  landmarks: dict[str, np.ndarray], *, pad_mm: float = CROP_PAD_MM
                  ) -> PlanningContext:
    """Precompute the planning fields of one scan.

    Parameters
    ----------
    ct : Image
        CT in HU.
    masks : dict[str, Image]
        Bool masks on the CT grid: ``sacrum`` required; ``s1_body``, ``lesion``,
        ``ilium_left``, ``ilium_right``, ``canal``, ``iliac_vessels`` optional.
    frame : S1Frame
    landmarks : dict[str, (3,) array]
        World RAS mm.
    pad_mm : float
        Crop margin around the sacrum.

    Returns
    -------
    PlanningContext
    """
    if "sacrum" not in masks:
        raise AnatomyNotFoundError("no 'sacrum' mask: planning needs the sacrum")
    arrays = {k: check_mask_grid(v, ct, k) for k, v in masks.items()}
    sacrum = arrays["sacrum"]
    if not sacrum.any():
        raise AnatomyNotFoundError(
            f"the sacrum mask is empty ({ct.source or 'CT'}): no sacrum in this scan")
    sl = crop_slices(sacrum, ct.spacing_mm, pad_mm)
    aff = cropped_affine(ct.affine, sl)
    sp = ct.spacing_mm
    sources: dict[str, str] = {}
    half = 0.5 * float(sp.min())  # voxel centres lie half a voxel inside a structure's surface

    bone_mask = sacrum[sl].copy()
    if "lesion" in arrays:
        bone_mask &= ~arrays["lesion"][sl]
        sources["lesion"] = "label (removed from usable bone)"
    if not bone_mask.any():
        raise AnatomyNotFoundError("no usable sacral bone left once the lesion is removed")
    bone_sd = signed_distance_mm(bone_mask, sp)
    clear = bone_sd
    if "s1_body" in arrays and arrays["s1_body"][sl].any():
        body_sd = signed_distance_mm(arrays["s1_body"][sl], sp)
        clear = np.minimum(bone_sd, -body_sd)
        sources["s1_body"] = f"{masks['s1_body'].source or 'label'} (alar screws kept out of it)"
    else:
        sources["s1_body"] = "absent (no constraint)"

    hu = np.asarray(ct.array[sl], float)

    # surface voxels, their S1-frame coordinates and outward normals (for the estimated bands)
    surface = bone_mask & ~ndimage.binary_erosion(bone_mask)
    s_idx = np.nonzero(surface)
    s_ijk = np.stack(s_idx, axis=-1)
    fr_s = frame.to_frame_mm(s_ijk.astype(float) @ aff[:3, :3].T + aff[:3, 3])
    normals_s = _surface_normals(bone_sd, s_ijk, aff)
    # anterior-facing surface in front of the S1 canal (excludes the front of the articular
    # processes and the dorsal elements)
    ant_s = ((normals_s @ frame.anterior_ras) > ANTERIOR_COS) & (fr_s[:, 1] >= ANTERIOR_MIN_MM)

    s_xyz = s_ijk.astype(float) @ aff[:3, :3].T + aff[:3, 3]
    vessels = arrays.get("iliac_vessels")
    if vessels is not None and vessels.any():
        vessel_set = PointSet(_voxel_points(vessels, ct.affine), half)
        estimated = False
        sources["iliac_vessels"] = "label"
    else:
        band = ant_s & (fr_s[:, 2] >= VESSEL_CRANIAL_MIN_MM)
        if not band.any():
            band = ant_s
        if not band.any():
            raise AnatomyNotFoundError("cannot find the anterior sacral cortex to estimate "
                                       "the iliac vessels")
        vessel_set = PointSet(s_xyz[band], half)
        estimated = True
        sources["iliac_vessels"] = ("estimated: vessels taken to lie on the anterior sacral "
                                    "cortex at the S1 level (lower bound)")
    lat = np.abs(fr_s[:, 0])
    root_band = (ant_s & (lat >= ROOT_LATERAL_MM[0]) & (lat <= ROOT_LATERAL_MM[1])
                 & (fr_s[:, 2] >= ROOT_CRANIAL_MM[0]) & (fr_s[:, 2] <= ROOT_CRANIAL_MM[1]))
    if not root_band.any():
        root_band = ant_s
    root_set = PointSet(s_xyz[root_band], half) if root_band.any() else None
    sources["l5_root"] = ("estimated: anterior alar cortex "
                          f"{ROOT_LATERAL_MM[0]:g}-{ROOT_LATERAL_MM[1]:g} mm lateral")

    ilium = None
    sacroiliac = None
    il = [arrays[k][sl] for k in ("ilium_left", "ilium_right") if k in arrays]
    if il and np.any([m.any() for m in il]):
        ilium_mask = np.logical_or.reduce(il)
        ilium = PointSet(_voxel_points(ilium_mask, aff), half)
        sacroiliac = GridField(signed_distance_mm(ilium_mask | bone_mask, sp), aff)
        sources["ilium"] = "label"
    else:
        sources["ilium"] = "absent (SI joint judged from the ala_lateral landmark)"
    canal = None
    if "canal" in arrays and arrays["canal"][sl].any():
        canal = PointSet(_voxel_points(arrays["canal"][sl], aff), half)
        sources["canal"] = "label"
    else:
        sources["canal"] = "estimated from the canal landmark"

    return PlanningContext(
        ct=ct, frame=frame,
        landmarks={k: np.asarray(v, float) for k, v in landmarks.items()},
        bone=GridField(bone_sd, aff), clearance=GridField(clear, aff), hu=GridField(hu, aff),
        vessels=vessel_set, vessels_estimated=estimated, root=root_set, ilium=ilium,
        sacroiliac=sacroiliac, canal=canal, sources=sources,
    )
