"""The one image type of alarscrew: a 3D array that always carries its voxel->world affine.

World coordinates are RAS millimetres (x right, y anterior, z superior), as in nibabel and
3D Slicer. Voxel indices are called ``ijk``. Conversion happens only through the affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from nibabel.affines import apply_affine

from alarscrew.errors import GeometryError, ImageError

#: Spacing outside this range (mm) is refused as absurd for a clinical CT.
MIN_SPACING_MM = 0.05
MAX_SPACING_MM = 20.0


@dataclass(frozen=True, eq=False)
class Image:
    """A 3D image (CT or label map) with its 4x4 voxel->RAS-mm affine.

    Parameters
    ----------
    array : (I, J, K) ndarray
        Voxel values (HU for CT, integer codes or bool for label maps).
    affine : (4, 4) ndarray
        Maps homogeneous ``ijk`` voxel indices to world RAS millimetres.
    is_label : bool
        True for label maps and masks: they are resampled nearest-neighbour only.
    source : str, optional
        Where the image came from (file path, or a description); used in messages.
    """

    array: np.ndarray
    affine: np.ndarray
    is_label: bool = False
    source: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = self.source or "image"
        arr = np.asarray(self.array)
        if arr.ndim != 3:
            raise ImageError(
                f"expected a 3D volume, got {arr.ndim}D with shape {arr.shape}", path=where
            )
        if min(arr.shape) < 1:
            raise ImageError(f"image is empty (shape {arr.shape})", path=where)
        aff = np.asarray(self.affine, dtype=float)
        if aff.shape != (4, 4):
            raise GeometryError(f"{where}: affine must be 4x4, not {aff.shape}")
        if not np.all(np.isfinite(aff)):
            raise GeometryError(f"{where}: affine contains NaN or infinity")
        if not np.allclose(aff[3], [0, 0, 0, 1]):
            raise GeometryError(f"{where}: affine last row must be [0, 0, 0, 1], not {aff[3]}")
        if abs(np.linalg.det(aff[:3, :3])) < 1e-9:
            raise GeometryError(f"{where}: affine is singular (zero voxel size or collinear axes)")
        sp = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
        if np.any(sp < MIN_SPACING_MM) or np.any(sp > MAX_SPACING_MM):
            raise ImageError(
                f"absurd voxel spacing {np.round(sp, 4).tolist()} mm; expected "
                f"{MIN_SPACING_MM}-{MAX_SPACING_MM} mm per axis (check the header units)",
                path=where,
            )
        object.__setattr__(self, "array", arr)
        aff = aff.copy()
        aff.setflags(write=False)
        object.__setattr__(self, "affine", aff)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel grid shape (I, J, K)."""
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size along i, j, k in mm, from the affine's columns (not the header zooms)."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel in mm^3."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def ijk_to_ras(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices (..., 3) -> world RAS mm (..., 3)."""
        return apply_affine(self.affine, np.asarray(ijk, dtype=float))

    def ras_to_ijk(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """World RAS mm (..., 3) -> continuous voxel indices (..., 3)."""
        return apply_affine(np.linalg.inv(self.affine), np.asarray(xyz_ras_mm, dtype=float))

    def contains_ras(self, xyz_ras_mm: np.ndarray) -> np.ndarray:
        """Whether world points fall inside the voxel grid (bool array of shape (...))."""
        ijk = self.ras_to_ijk(xyz_ras_mm)
        upper = np.asarray(self.shape) - 0.5
        return np.all((ijk >= -0.5) & (ijk <= upper), axis=-1)

    def with_array(self, array: np.ndarray, *, is_label: bool | None = None,
                   source: str | None = None) -> Image:
        """A new image on the same grid with other voxel values."""
        arr = np.asarray(array)
        if arr.shape != self.array.shape:
            raise GeometryError(
                f"new array shape {arr.shape} differs from the grid {self.array.shape}"
            )
        return Image(
            arr,
            self.affine,
            is_label=self.is_label if is_label is None else is_label,
            source=source or self.source,
            meta=dict(self.meta),
        )

    def same_grid(self, other: Image, *, atol_mm: float = 1e-3) -> bool:
        """True when both images share shape and affine (within ``atol_mm``)."""
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, atol=atol_mm)
        )

    def grid_description(self) -> str:
        """Shape, spacing and origin in words, for error messages."""
        sp = np.round(self.spacing_mm, 3).tolist()
        org = np.round(self.affine[:3, 3], 2).tolist()
        return f"shape {self.shape}, spacing {sp} mm, origin {org} mm"
