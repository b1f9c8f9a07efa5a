"""The phantom's lumbosacral anatomy, defined analytically in the S1 frame.

Coordinates are millimetres in the S1 frame of :mod:`alarscrew.spatial.frame`:
``x`` = patient right, ``y`` = anterior, ``z`` = cranial (normal of the S1 superior
endplate), origin at the centre of that endplate. The world placement (sacral slope,
pelvic tilt) is applied later by a rigid transform, so every answer here is exact in the
frame and stays exact in the world.

Dimensions (mean adult values, rounded; the phantom is one plausible sacrum, not an
average shape):

- S1 superior endplate 48 mm wide x 32 mm deep, S1 body 27 mm high; S1 pedicles about
  14 mm wide and 18 mm high; sacral width at S1 100-107 mm (measured on the 1 mm labels
  5-20 mm under the endplate); first dorsal foramina about 8 mm wide [1]_, [2]_, [3]_.
- L5/S1 disc about 13 mm high anteriorly and 5 mm posteriorly (12 degrees of segmental
  lordosis), lumbosacral facets about 45 degrees to the sagittal plane [5]_: plausible
  values chosen for the phantom, not measurements from one study.
- Neutral sacral slope 40 degrees [4]_ (set in :mod:`alarscrew.phantom`).
- Sacroiliac joint space 3 mm (the normal joint space on CT is a few millimetres) [6]_.
- Cortical shell 1.2 mm of 850 HU around cancellous bone of 200 HU (adult sacral and
  vertebral trabecular attenuation 150-250 HU) [7]_.

References
----------
.. [1] Arman C, Naderi S, Kiray A, et al. The human sacrum and safe approaches for screw
   placement. J Clin Neurosci. 2009;16(8):1046-1049.
.. [2] Mirkovic S, Abitbol JJ, Steinman J, et al. Anatomic consideration for sacral screw
   placement. Spine. 1991;16(6 Suppl):S289-S294.
.. [3] Saluja S, Agarwal S, Tuli A, et al. Morphometric analysis of the sacrum and its
   surgical implications. J Clin Diagn Res. 2018;12(6):AC01-AC06 (first dorsal foramen
   10.4 x 7.7 mm; S1 pedicle height about 20 mm).
.. [4] Legaye J, Duval-Beaupere G, Hecquet J, Marty C. Pelvic incidence: a fundamental
   pelvic parameter for three-dimensional regulation of spinal sagittal curves. Eur Spine J.
   1998;7(2):99-103 (mean sacral slope about 41 degrees).
.. [5] Masharawi Y, Rothschild B, Dar G, et al. Facet orientation in the thoracolumbar
   spine. Spine. 2004;29(16):1755-1763.
.. [6] Vogler JB 3rd, Brown WH, Helms CA, Genant HK. The normal sacroiliac joint: a CT
   study of asymptomatic patients. Radiology. 1984;151(2):433-437.
.. [7] Schreiber JJ, Anderson PA, Rosas HG, et al. Hounsfield units for assessing bone
   mineral density and strength. J Bone Joint Surg Am. 2011;93(11):1057-1063.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from alarscrew.phantom._sdf import (
    Capsule,
    Ellipsoid,
    EllipticCylinder,
    HalfSpace,
    Op,
    RoundBox,
    Shape,
    rotation_x,
    rotation_z,
    surface_along_ray,
)

# --- S1 body: an exact elliptic cylinder (the body-loss ground truth depends on it) -----
S1_BODY_SEMI_X_MM = 24.0   # endplate width 48 mm
S1_BODY_SEMI_Y_MM = 16.0   # endplate depth 32 mm
S1_BODY_HEIGHT_MM = 27.0
#: Frame z of the S1 pedicle centres: the "pedicle level" of the body-loss measure.
PEDICLE_LEVEL_Z_MM = -10.0
#: Medial edge of the ala; lateral dimensions scale from here with the asymmetry factor.
ALA_ROOT_X_MM = 14.0
#: Sacroiliac plane passes x = SI_X_MM at y = SI_Y_MM, turned SI_ANGLE_DEG from sagittal
#: (anterior end more lateral).
SI_X_MM = 50.0
SI_Y_MM = -10.0
SI_ANGLE_DEG = 22.0
SI_GAP_MM = 3.0
FACET_GAP_MM = 2.0
FACET_ANGLE_DEG = 45.0
#: Ends of the L5 inferior articular process (caudal tip, cranial top), frame z relative to
#: the centre of the S1 facet face (mm). With the tip at -5 mm the process keeps at least
#: 1.8 mm (about the joint space) from the sacrum everywhere; a tip at -7 mm came within
#: 0.3 mm of the S1 lamina below it, a bony contact at any CT resolution.
IAP_TIP_Z_MM, IAP_TOP_Z_MM = -5.0, 17.0
SAP_HALF_THICK_MM = 6.0
CORTEX_MM = 1.2
#: L5/S1 disc: centre height and lordotic wedge angle of the L5 inferior endplate.
DISC_CENTER_Z_MM = 9.0
LORDOSIS_DEG = 12.0

SIDES = ("left", "right")


def _sgn(side: str) -> float:
    return 1.0 if side == "right" else -1.0


@dataclass(frozen=True)
class PhantomAnatomy:
    """All solids of the phantom (frame mm) and its exact landmarks.

    Attributes
    ----------
    sacrum, l5 : Shape
        Bone solids (cortex + cancellous).
    ilium : dict[str, Shape]
        Per side.
    s1_body : EllipticCylinder
        The S1 vertebral body region used for body loss.
    canal, thecal_sac, disc : Shape
        Soft-tissue regions.
    arteries, veins : dict[str, Shape]
        Common/external iliac vessels per side.
    landmarks_frame_mm : dict[str, ndarray]
        Model.py landmark names -> (3,) frame mm.
    facet_normal : dict[str, ndarray]
        Unit normal (frame) of each S1 superior facet surface, pointing out of the bone.
    foramen_axis : dict[str, ndarray]
        Unit axis (frame) of each dorsal S1 foramen, pointing out of the dorsal surface.
    scale : dict[str, float]
        Lateral scale of each side (1 on the left, ``1 + asymmetry`` on the right).
    """

    sacrum: Shape
    l5: Shape
    ilium: dict[str, Shape]
    s1_body: EllipticCylinder
    canal: Shape
    thecal_sac: Shape
    disc: Shape
    arteries: dict[str, Shape]
    veins: dict[str, Shape]
    landmarks_frame_mm: dict[str, np.ndarray]
    facet_normal: dict[str, np.ndarray]
    foramen_axis: dict[str, np.ndarray]
    scale: dict[str, float]

    def si_plane(self, side: str) -> HalfSpace:
        """Sacral side of the sacroiliac joint on ``side`` (half-space, frame mm)."""
        return si_plane(side, self.scale[side])


def _lat(x: float, k: float) -> float:
    """Scale a lateral distance from the ala root by ``k`` (asymmetry)."""
    ax = abs(x)
    return float(np.sign(x)) * (ax if ax <= ALA_ROOT_X_MM else ALA_ROOT_X_MM
                                + (ax - ALA_ROOT_X_MM) * k)


def si_plane(side: str, k: float) -> HalfSpace:
    """Half-space ``n . p <= d`` on the sacral side of the SI joint on ``side``."""
    s = _sgn(side)
    a = np.radians(SI_ANGLE_DEG)
    n = np.array([s * np.cos(a), -np.sin(a), 0.0])
    x0 = _lat(s * SI_X_MM, k)
    return HalfSpace(n, float(n @ np.array([x0, SI_Y_MM, 0.0])))


def _facet_axes(side: str) -> tuple[np.ndarray, np.ndarray]:
    """(normal, lateral tangent) of the S1 superior facet: normal faces posteromedially."""
    s = _sgn(side)
    a = np.radians(FACET_ANGLE_DEG)
    n = np.array([-s * np.sin(a), -np.cos(a), 0.0])
    t = np.array([s * np.cos(a), -np.sin(a), 0.0])  # in the facet plane, pointing lateral
    return n, t


def _sap_box(side: str, center: np.ndarray, half: tuple[float, float, float],
             radius: float) -> RoundBox:
    n, t = _facet_axes(side)
    rot = np.stack([n, t, np.array([0.0, 0.0, 1.0])])
    return RoundBox(center, np.asarray(half, float), radius, rot)


def sap_face_center(side: str) -> np.ndarray:
    """A point of the S1 superior facet plane (frame mm), near the facet centre."""
    n, _ = _facet_axes(side)
    return np.array([_sgn(side) * 27.0, -33.0, 4.0]) + 4.5 * n


def _sacrum_ops(side: str, k: float) -> list[Op]:
    s = _sgn(side)
    n, _ = _facet_axes(side)
    L = lambda x: _lat(s * x, k)  # noqa: E731 - tiny local helper
    ops = [
        # pedicle: body -> posterior elements
        Op("union", Ellipsoid(np.array([s * 19.0, -22.0, PEDICLE_LEVEL_Z_MM]),
                              np.array([7.0, 13.0, 9.0])), 4.0),
        # ala (costal element of S1), sweeping laterally to the SI joint
        Op("union", Ellipsoid(np.array([L(34.0), -9.0, -14.0]),
                              np.array([24.0 * k, 17.0, 12.0])), 6.0),
        # lateral mass with the auricular surface (S1-S3)
        Op("union", Ellipsoid(np.array([L(38.0), -17.0, -38.0]),
                              np.array([16.0 * k, 19.0, 30.0])), 6.0),
        # dorsal mass lateral to the SAP (lateral sacral crest, S1-S2)
        Op("union", RoundBox(np.array([L(30.0), -31.0, -20.0]),
                             np.array([13.0 * k, 10.0, 15.0]), 5.0), 5.0),
        # S1 superior articular process, facet surface faces posteromedially
        Op("union", _sap_box(side, sap_face_center(side) - SAP_HALF_THICK_MM * n,
                             (SAP_HALF_THICK_MM, 8.0, 10.5), 1.5), 2.0),
        # base of the SAP, lateral and anterior to (behind) the facet surface
        Op("union", Ellipsoid(np.array([s * 32.0, -32.0, -7.0]), np.array([7.0, 7.0, 8.0])),
           4.0),
        # S2 and S3 costal elements
        Op("union", Ellipsoid(np.array([s * 24.0, -8.0, -45.0]),
                              np.array([14.0, 13.0, 9.0])), 5.0),
        Op("union", Ellipsoid(np.array([s * 19.0, -6.0, -64.0]),
                              np.array([11.0, 11.0, 8.0])), 5.0),
    ]
    return ops


#: Axis end points (frame mm) of the dorsal S1 foramina: canal recess -> dorsal surface.
_DORSAL_S1_FORAMEN = {
    side: (np.array([_sgn(side) * 14.0, -27.0, -30.0]),
           np.array([_sgn(side) * 19.0, -50.0, -29.0]))
    for side in SIDES
}


def _foramina_ops(side: str) -> list[Op]:
    s = _sgn(side)
    caps = [
        # S1: ventral (pelvic) and dorsal foramina, leaving the canal's lateral recess
        Capsule(np.array([s * 13.0, -24.0, -32.0]), np.array([s * 21.0, 14.0, -34.0]), 4.5),
        Capsule(*_DORSAL_S1_FORAMEN[side], 3.8),
        # S2
        Capsule(np.array([s * 11.0, -22.0, -55.0]), np.array([s * 17.0, 10.0, -56.0]), 4.0),
        Capsule(np.array([s * 12.0, -24.0, -53.0]), np.array([s * 15.0, -46.0, -52.0]), 3.0),
        # S3
        Capsule(np.array([s * 9.0, -18.0, -73.0]), np.array([s * 13.0, 8.0, -74.0]), 3.2),
        Capsule(np.array([s * 9.0, -19.0, -72.0]), np.array([s * 12.0, -38.0, -71.0]), 2.5),
    ]
    return [Op("cut", c) for c in caps]


def _canal_prims() -> list[EllipticCylinder]:
    """Spinal canal segments (frame mm): L5, S1, S2, S3, following the sacral curve."""
    return [
        EllipticCylinder(np.array([0.0, -27.0, 30.0]), np.array([11.5, 9.0, 22.0]),
                         rotation_x(-LORDOSIS_DEG)),
        EllipticCylinder(np.array([0.0, -26.0, -12.0]), np.array([12.5, 8.5, 21.0])),
        EllipticCylinder(np.array([0.0, -24.0, -47.0]), np.array([10.0, 6.5, 15.0]),
                         rotation_x(8.0)),
        EllipticCylinder(np.array([0.0, -19.5, -72.0]), np.array([7.0, 4.5, 12.0]),
                         rotation_x(20.0)),
    ]


def _vessel(side: str, k: float, pts: list[tuple[float, float, float]], radius_mm: float
            ) -> Shape:
    """Tube through ``pts`` (left-side x given as magnitude; mirrored and scaled per side)."""
    s = _sgn(side)
    p = [np.array([_lat(s * x, k), y, z]) for x, y, z in pts]
    return Shape(tuple(Op("union", Capsule(a, b, radius_mm), 2.0)
                       for a, b in itertools.pairwise(p)))


@functools.lru_cache(maxsize=8)
def build_anatomy(asymmetry: float = 0.0) -> PhantomAnatomy:
    """Build the phantom's solids and landmarks in the S1 frame.

    Parameters
    ----------
    asymmetry : float
        Positive: the right ala (and the right ilium with it) is ``1 + asymmetry`` times as
        wide as the left one, measured laterally from the ala root (x = 14 mm). Negative: the
        left ala is ``1 - asymmetry`` times as wide as the right. The smaller side keeps the
        nominal size (shrinking it would bring the SI joint into the S1 articular process).

    Returns
    -------
    PhantomAnatomy
        Cached per ``asymmetry`` (the facet quadrature takes a few tenths of a second), so
        the same object is shared between calls: treat it as read-only.
    """
    a = float(asymmetry)
    k = {"left": 1.0 + max(-a, 0.0), "right": 1.0 + max(a, 0.0)}
    body = EllipticCylinder(np.array([0.0, 0.0, -S1_BODY_HEIGHT_MM / 2]),
                            np.array([S1_BODY_SEMI_X_MM, S1_BODY_SEMI_Y_MM,
                                      S1_BODY_HEIGHT_MM / 2]))
    canal_prims = _canal_prims()

    # ---------------------------------------------------------------- sacrum (S1-S5)
    ops: list[Op] = [Op("union", body)]
    ops += [
        # S2-S5 bodies, fused, following the sacral kyphosis (caudal part curves anteriorly)
        Op("union", EllipticCylinder(np.array([0.0, -1.5, -40.0]), np.array([19.0, 14.0, 13.0]),
                                     rotation_x(6.0)), 4.0),
        Op("union", Ellipsoid(np.array([0.0, 1.0, -60.0]), np.array([15.0, 11.0, 11.0]),
                              rotation_x(14.0)), 5.0),
        Op("union", Ellipsoid(np.array([0.0, 5.0, -77.0]), np.array([11.0, 9.0, 9.5]),
                              rotation_x(24.0)), 5.0),
        Op("union", Ellipsoid(np.array([0.0, 10.0, -92.0]), np.array([7.0, 7.0, 7.5]),
                              rotation_x(30.0)), 4.0),
        # dorsal roof of the canal (fused laminae) with the median sacral crest
        Op("union", RoundBox(np.array([0.0, -39.0, -21.0]), np.array([26.0, 5.0, 17.0]), 3.0),
           4.0),
        Op("union", RoundBox(np.array([0.0, -46.0, -22.0]), np.array([3.5, 5.0, 14.0]), 2.0),
           3.0),
        Op("union", RoundBox(np.array([0.0, -35.0, -47.0]), np.array([18.0, 5.0, 14.0]), 3.0,
                             rotation_x(8.0)), 4.0),
        Op("union", RoundBox(np.array([0.0, -40.5, -48.0]), np.array([3.0, 4.0, 12.0]), 2.0,
                             rotation_x(8.0)), 3.0),
        Op("union", RoundBox(np.array([0.0, -28.5, -71.0]), np.array([12.0, 4.0, 11.0]), 3.0,
                             rotation_x(20.0)), 4.0),
    ]
    for side in SIDES:
        ops += _sacrum_ops(side, k[side])
    for side in SIDES:
        ops.append(Op("clip", si_plane(side, k[side])))
    ops += [Op("cut", c) for c in canal_prims[1:]]
    for side in SIDES:
        ops += _foramina_ops(side)
    sacrum = Shape(tuple(ops))

    # ---------------------------------------------------------------- L5
    rl5 = rotation_x(-LORDOSIS_DEG)  # L5 axes tilted: anterior disc taller than posterior
    c5 = np.array([0.0, -1.0, DISC_CENTER_Z_MM])
    up = rl5[2]
    ant = rl5[1]

    def at(x: float, y: float, z: float) -> np.ndarray:
        """L5-local (x right, y anterior, z cranial from the inferior endplate) -> frame."""
        return c5 + x * rl5[0] + y * ant + z * up

    l5_ops = [
        Op("union", EllipticCylinder(at(0, 0, 14.0), np.array([25.0, 17.0, 14.0]), rl5)),
        Op("union", RoundBox(at(0, -47.0, 20.0), np.array([4.0, 16.0, 10.0]), 3.0, rl5), 4.0),
        Op("union", RoundBox(at(0, -37.0, 18.0), np.array([15.0, 5.0, 10.0]), 3.0, rl5), 4.0),
    ]
    n_f = {}
    for side in SIDES:
        s = _sgn(side)
        n, _ = _facet_axes(side)
        n_f[side] = n
        l5_ops += [
            Op("union", Ellipsoid(at(s * 17.0, -20.0, 18.0), np.array([6.0, 11.0, 8.0]), rl5),
               4.0),
            Op("union", Ellipsoid(at(s * 36.0, -22.0, 20.0), np.array([18.0, 6.0, 7.0]), rl5),
               5.0),
            # inferior articular process: faces the S1 facet across a FACET_GAP_MM joint
            # and ends above the S1 lamina (IAP_TIP_Z_MM)
            Op("union", _sap_box(side, sap_face_center(side) + n * (FACET_GAP_MM + 3.0)
                                 + np.array([0.0, 0.0, 0.5 * (IAP_TOP_Z_MM + IAP_TIP_Z_MM)]),
                                 (3.0, 7.5, 0.5 * (IAP_TOP_Z_MM - IAP_TIP_Z_MM)), 1.5),
               3.0),
        ]
    l5_ops.append(Op("cut", canal_prims[0]))
    l5 = Shape(tuple(l5_ops))

    # ---------------------------------------------------------------- ilia
    ilium = {}
    for side in SIDES:
        s = _sgn(side)
        x_si = _lat(s * SI_X_MM, k[side])
        plane = si_plane(side, k[side])
        # the ilium starts SI_GAP_MM lateral to the sacral side (the plane normal is unit)
        gap_side = HalfSpace(-np.asarray(plane.normal), -(plane.offset_mm + SI_GAP_MM))
        il_ops = [
            # posterior ilium with the auricular surface, long axis along the SI joint
            Op("union", Ellipsoid(np.array([x_si + s * 15.0, -14.0, -22.0]),
                                  np.array([19.0, 34.0, 40.0]), rotation_z(-s * SI_ANGLE_DEG))),
            Op("union", Ellipsoid(np.array([x_si + s * 10.0, -48.0, 2.0]),
                                  np.array([12.0, 13.0, 22.0])), 6.0),
            Op("union", Ellipsoid(np.array([x_si + s * 45.0, 8.0, 26.0]),
                                  np.array([6.0, 48.0, 38.0]), rotation_z(-s * 35.0)), 8.0),
            Op("union", Ellipsoid(np.array([x_si + s * 26.0, 18.0, -70.0]),
                                  np.array([17.0, 24.0, 28.0])), 8.0),
            Op("clip", gap_side),
        ]
        ilium[side] = Shape(tuple(il_ops))

    # ---------------------------------------------------------------- soft tissue
    canal = Shape(tuple(Op("union", c, 2.0) for c in canal_prims))
    thecal = Shape((
        Op("union", EllipticCylinder(np.array([0.0, -26.5, 26.0]), np.array([8.0, 6.0, 22.0]),
                                     rotation_x(-LORDOSIS_DEG))),
        Op("union", EllipticCylinder(np.array([0.0, -25.0, -14.0]), np.array([8.0, 5.5, 18.0])),
           3.0),
        Op("union", Ellipsoid(np.array([0.0, -24.0, -36.0]), np.array([6.0, 4.0, 8.0])), 3.0),
    ))
    disc = Shape((
        Op("union", EllipticCylinder(np.array([0.0, 0.0, 5.0]), np.array([24.0, 16.0, 5.0]))),
        Op("union", EllipticCylinder(at(0, 0, -4.0), np.array([24.5, 16.5, 4.0]), rl5), 2.0),
        Op("clip", HalfSpace(np.array([0.0, 0.0, -1.0]), 0.0)),
        Op("cut", EllipticCylinder(at(0, 0, 14.0), np.array([25.0, 17.0, 14.0]), rl5)),
    ))
    arteries, veins = {}, {}
    for side in SIDES:
        # common -> external iliac vessels, anterior to the promontory and the ala
        arteries[side] = _vessel(side, k[side], [(10.0, 48.0, 50.0), (22.0, 40.0, 12.0),
                                                 (40.0, 34.0, -25.0), (56.0, 40.0, -70.0)], 5.0)
        veins[side] = _vessel(side, k[side], [(6.0, 36.0, 50.0), (20.0, 28.0, 12.0),
                                              (40.0, 20.0, -25.0), (52.0, 26.0, -70.0)], 6.0)

    lm = _landmarks(sacrum, body, k)
    axis = {}
    for side in SIDES:
        p0, p1 = _DORSAL_S1_FORAMEN[side]
        axis[side] = (p1 - p0) / np.linalg.norm(p1 - p0)
    return PhantomAnatomy(sacrum, l5, ilium, body, canal, thecal, disc, arteries, veins, lm,
                          n_f, axis, k)


def _ala_lateral(sacrum: Shape, side: str, start: np.ndarray) -> np.ndarray:
    """Lateral boundary of the ala on a lateral ray at the pedicle level (frame mm).

    The ray starts at ``start`` (the pedicle centre's x and z, midway in y between the
    pedicle centre and the anterior alar cortex) and runs along the frame's lateral axis; its
    first exit from the sacrum (to 1e-4 mm) lies on the sacroiliac face of the ala, which it
    crosses at 22 degrees from the face's normal, so a small error in the ray's position
    moves the point little.
    """
    lateral = np.array([_sgn(side), 0.0, 0.0])
    return surface_along_ray(sacrum, start, lateral)


#: Sampling step (mm) of the facet-surface quadrature.
FACET_QUADRATURE_MM = 0.2
#: The facet surface is the sacral surface whose outward normal lies within this angle of
#: the facet's posteromedial normal (the definition of :mod:`alarscrew.anatomy.landmarks`).
FACET_CONE_DEG = 35.0


def facet_surface(sacrum: Shape, side: str) -> tuple[np.ndarray, np.ndarray]:
    """The S1 superior facet surface on ``side``, sampled for area quadrature (frame mm).

    Rays parallel to the facet normal, on a square grid of :data:`FACET_QUADRATURE_MM` across
    the facet plane, come in from the posteromedial side; where a ray meets the sacrum with an
    outward surface normal within :data:`FACET_CONE_DEG` of the facet normal, the hit point
    belongs to the posteromedially facing surface. The facet is the connected piece of such
    points that holds the centre of the articular face (:func:`sap_face_center`). A hit
    stands for the surface area ``h**2 / cos(angle)`` (``h`` the grid step, ``angle`` between
    its normal and the ray).

    Returns
    -------
    pts : (N, 3) ndarray
        Points of the facet surface (frame mm).
    area_mm2 : (N,) ndarray
        Surface area each point stands for.
    """
    n, t = _facet_axes(side)
    c = sap_face_center(side)
    h = FACET_QUADRATURE_MM
    t_ax = np.arange(-14.0, 14.0 + h / 2, h)
    z_ax = np.arange(-16.0, 16.0 + h / 2, h)
    tt, zz = np.meshgrid(t_ax, z_ax, indexing="ij")
    base = c + tt[..., None] * t + zz[..., None] * np.array([0.0, 0.0, 1.0])  # (T, Z, 3)
    # march each ray from 12 mm outside the face plane inward (0.5 mm steps: the solid has
    # no feature thinner than that), then bisect the first entry to 1e-4 mm
    step = 0.5
    hit_d = np.full(tt.shape, np.nan)
    for d in np.arange(12.0, -14.0, -step):
        q = base + d * n
        inside = sacrum.sdf(q[..., 0], q[..., 1], q[..., 2]) < 0
        hit_d[inside & np.isnan(hit_d)] = d
    found = np.isfinite(hit_d)
    lo, hi = hit_d[found], hit_d[found] + step  # lo inside, hi outside
    b = base[found]
    for _ in range(13):
        mid = 0.5 * (lo + hi)
        q = b + mid[:, None] * n
        ins = sacrum.sdf(q[:, 0], q[:, 1], q[:, 2]) < 0
        lo, hi = np.where(ins, mid, lo), np.where(ins, hi, mid)
    pts = b + (0.5 * (lo + hi))[:, None] * n
    e = 1e-3
    grad = np.stack([sacrum.sdf(*(pts + e * ax).T) - sacrum.sdf(*(pts - e * ax).T)
                     for ax in np.eye(3)], axis=1)
    nrm = grad / np.linalg.norm(grad, axis=1, keepdims=True)
    cos_a = nrm @ n
    facing = np.zeros(tt.shape, bool)
    facing[found] = cos_a >= np.cos(np.radians(FACET_CONE_DEG))
    cos_a = np.maximum(cos_a, 1e-6)  # only facing points (cos >= 0.8) are used
    lab, _ = ndimage.label(facing)
    centre = lab[np.argmin(np.abs(t_ax)), np.argmin(np.abs(z_ax))]
    if centre == 0:  # pragma: no cover - guards the geometry
        raise RuntimeError(f"the {side} S1 facet face does not face posteromedially")
    keep = (lab == centre)[found]
    return pts[keep], (h * h / cos_a)[keep]


def _landmarks(sacrum: Shape, body: EllipticCylinder, k: dict[str, float]
               ) -> dict[str, np.ndarray]:
    """Exact landmarks (frame mm) on/inside the sacrum solid, under the model.py names."""
    lm: dict[str, np.ndarray] = {
        "endplate_center": np.zeros(3),
        "promontory": np.array([0.0, S1_BODY_SEMI_Y_MM, 0.0]),
        "canal": np.array([0.0, -26.0, PEDICLE_LEVEL_Z_MM]),
    }
    for side in SIDES:
        s = _sgn(side)
        # facet: area centroid of the posteromedially facing facet surface
        pts, area = facet_surface(sacrum, side)
        lm[f"{side}.sap_facet"] = area @ pts / area.sum()
        # paper's entry (Fang et al. 2022: "the lateral-inferior part of the inferior half" of
        # the facet surface): the inferior half is the surface caudal to the facet centroid,
        # its lateral-inferior part the points of that half caudal to and lateral of the
        # half's own centroid; area centroid of those
        _, t_lat = _facet_axes(side)
        half = pts[:, 2] < lm[f"{side}.sap_facet"][2]
        c_half = area[half] @ pts[half] / area[half].sum()
        part = half & (pts[:, 2] < c_half[2]) & ((pts - c_half) @ t_lat > 0)
        lm[f"{side}.entry"] = area[part] @ pts[part] / area[part].sum()
        lm[f"{side}.pedicle"] = np.array([s * 19.0, -22.0, PEDICLE_LEVEL_Z_MM])
        # anterior cortex of the ala at mid-ala, pedicle level
        lm[f"{side}.ala_anterior"] = surface_along_ray(
            sacrum, np.array([_lat(s * 36.0, k[side]), -9.0, PEDICLE_LEVEL_Z_MM]),
            np.array([0, 1.0, 0]))
        ped = lm[f"{side}.pedicle"]
        mid = np.array([ped[0], 0.5 * (ped[1] + lm[f"{side}.ala_anterior"][1]), ped[2]])
        lm[f"{side}.ala_lateral"] = _ala_lateral(sacrum, side, mid)
        # dorsal S1 foramen: centre of its opening on the dorsal surface (on the tunnel axis)
        a, b = _DORSAL_S1_FORAMEN[side]
        hull = Shape(tuple(op for op in sacrum.ops if not (op.kind == "cut"
                                                           and isinstance(op.prim, Capsule))))
        start = a + 0.45 * (b - a)
        lm[f"{side}.s1_foramen"] = surface_along_ray(hull, start, b - a)
    return lm
