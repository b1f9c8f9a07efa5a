"""World-frame conventions: the one LPS <-> RAS matrix, and named NRRD spaces.

alarscrew works in RAS millimetres (x right, y anterior, z superior, as nibabel and
3D Slicer). DICOM and ITK/NRRD files usually store LPS (x left, y posterior, z superior).
Every conversion between the two goes through :data:`LPS_TO_RAS` (its own inverse), so a
sign error can only live in one place.
"""

from __future__ import annotations

import numpy as np

#: Homogeneous 4x4 matrix mapping LPS mm to RAS mm (negate x and y). It is its own inverse.
LPS_TO_RAS: np.ndarray = np.diag([-1.0, -1.0, 1.0, 1.0])
LPS_TO_RAS.setflags(write=False)

#: NRRD ``space`` values (lower case, both long and short forms of the NRRD 0004 spec) and
#: the 4x4 matrix that takes coordinates in that space to RAS mm. Other spaces
#: (scanner-xyz, 3D-right-handed, time-resolved spaces...) are refused.
NRRD_SPACE_TO_RAS: dict[str, np.ndarray] = {
    "right-anterior-superior": np.eye(4),
    "ras": np.eye(4),
    "left-posterior-superior": LPS_TO_RAS,
    "lps": LPS_TO_RAS,
    "left-anterior-superior": np.diag([-1.0, 1.0, 1.0, 1.0]),
    "las": np.diag([-1.0, 1.0, 1.0, 1.0]),
}


def lps_to_ras_affine(affine_lps: np.ndarray) -> np.ndarray:
    """Convert a voxel -> LPS-mm affine into a voxel -> RAS-mm affine.

    Parameters
    ----------
    affine_lps : (4, 4) ndarray
        Maps homogeneous ``ijk`` to LPS mm.

    Returns
    -------
    (4, 4) ndarray
        ``LPS_TO_RAS @ affine_lps``.
    """
    return LPS_TO_RAS @ np.asarray(affine_lps, dtype=float)


def ras_to_lps_affine(affine_ras: np.ndarray) -> np.ndarray:
    """Convert a voxel -> RAS-mm affine into a voxel -> LPS-mm affine (inverse of the above)."""
    return LPS_TO_RAS @ np.asarray(affine_ras, dtype=float)
