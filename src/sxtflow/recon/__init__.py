"""Tomographic reconstruction: normalisation, stripe removal, alignment, centre finding,
FBP and SIRT (built-in; astra-toolbox and tomopy backends when importable).

Modules, in the order of the pipeline (:func:`reconstruct`, in :mod:`._pipeline`, runs them):
:mod:`._normalize` (flats/darks, −ln, zingers), :mod:`._stripe` (stripes, cropping, binning),
:mod:`._align` (tilt-series alignment), :mod:`._center` (rotation centre), :mod:`._projector`
(the projector pair), :mod:`._fbp` (FBP; which algorithm a tilt range needs),
:mod:`._iterative` (SIRT, SIRT-TV), :mod:`._backends` (astra, tomopy), :mod:`._calibrate`
(ice LAC).

Geometry (see ``docs/contracts.md``)
------------------------------------
Parallel beam. For a volume slice ``f = lac[z]`` (µm⁻¹) with pixel size ``pixel_um`` the
line integral at angle θ (radians) is::

    skimage.transform.radon(f, theta=[np.rad2deg(θ)], circle=True)[:, 0] * pixel_um

Projections are ``(angles, rows, cols)``; detector rows are volume ``z``; reconstructions
are ``(rows, cols, cols)`` = ``(z, y, x)`` with the same orientation as
:func:`skimage.transform.iradon`. In pixel coordinates relative to the volume centre
``(n // 2, n // 2)`` (``n = cols``), voxel ``(y, x)`` projects at angle θ onto the
detector column::

    s = x cos θ − y sin θ + center

The rotation centre ``center`` is a *pixel-centre column index* of the detector. Note that
:func:`skimage.transform.radon` rotates about pixel ``n // 2``: for odd ``n`` that is
``(n − 1) / 2`` (the geometric middle); for even ``n`` it is ``n / 2``, half a pixel right
of the geometric middle. ``center=None`` therefore means ``n // 2`` everywhere here, which
makes ``fbp(radon(f))`` reproduce ``f`` for any ``n``. tomopy's ``center`` is measured
from pixel *edges*: tomopy's centre = ours + 0.5 (tomopy's axis sits at ``center − 0.5``
in our convention).

Units: :func:`fbp`, :func:`sirt` and :func:`forward_project` work in "per pixel" units
(line integrals are dimensionless; reconstructions are LAC × pixel size).
:func:`reconstruct` divides by the pixel size in µm and returns µm⁻¹.
"""

from ._align import align_coarse, align_projections, shift_projections
from ._backends import BACKENDS, astra_available, available_backends
from ._calibrate import ice_lac, normalize_to_ice
from ._center import center_metric, find_center
from ._fbp import FILTERS, FULL_ROTATION_DEG, angular_coverage, auto_algorithm, fbp
from ._iterative import sirt
from ._normalize import minus_log, normalize, remove_outliers
from ._pipeline import reconstruct
from ._projector import MATRIX_BUDGET_BYTES, back_project, forward_project
from ._stripe import bin_projections, crop_projections, remove_stripes

__all__ = [
    "shift_projections",
    "align_coarse",
    "align_projections",
    "BACKENDS",
    "available_backends",
    "astra_available",
    "ice_lac",
    "normalize_to_ice",
    "center_metric",
    "find_center",
    "FILTERS",
    "fbp",
    "FULL_ROTATION_DEG",
    "angular_coverage",
    "auto_algorithm",
    "sirt",
    "normalize",
    "minus_log",
    "remove_outliers",
    "reconstruct",
    "MATRIX_BUDGET_BYTES",
    "forward_project",
    "back_project",
    "remove_stripes",
    "bin_projections",
    "crop_projections",
]
