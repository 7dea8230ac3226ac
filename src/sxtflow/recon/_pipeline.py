"""The whole reconstruction: projections in, a LAC volume in µm⁻¹ out (:func:`reconstruct`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..core import InputError, Projections, Volume
from ._align import align_coarse, align_projections, shift_projections
from ._backends import BACKENDS, _astra_recon, _tomopy_recon
from ._calibrate import ice_lac
from ._center import find_center
from ._fbp import FILTERS, auto_algorithm, fbp
from ._iterative import sirt
from ._normalize import minus_log, normalize, remove_outliers
from ._stripe import _check_crop, bin_projections, crop_projections, remove_stripes

log = logging.getLogger("sxtflow")


#: Detector rows per slab by default: FBP reads the whole sparse back-projector (≈ 0.6 GB at
#: 512 columns and 180 angles) once per slab, so larger slabs cost less (the result does
#: not depend on it); SIRT keeps 8 (its iterations hold more per row).
FBP_SLAB_ROWS = 32
SIRT_SLAB_ROWS = 8


def reconstruct(
    proj: Projections,
    *,
    algorithm: str = "fbp",
    center: str | float = "auto",
    backend: str = "auto",
    filter_name: str = "shepp-logan",
    iterations: int = 100,
    outlier_threshold: float | None = None,
    slab_rows: int | None = None,
    stripe: bool = False,
    stripe_size: int = 5,
    align: bool = False,
    align_iterations: int = 6,
    binning: int = 1,
    crop_rows: tuple[int, int] | None = None,
    crop_cols: tuple[int, int] | None = None,
    tv_weight: float = 0.01,
) -> Volume:
    """Reconstruct a tilt series into a LAC volume in µm⁻¹.

    Steps: optional cropping, optional binning, flat/dark normalisation (skipped when
    ``proj.meta["normalized"]`` is true: the data are then transmission), −ln, optional
    zinger removal (on the line integrals), optional stripe removal
    (:func:`remove_stripes`), optional alignment (:func:`align_coarse`, centre finding,
    :func:`align_projections`), centre finding, FBP, SIRT or SIRT-TV, division by the
    pixel size in µm, and a measurement of the ice LAC (:func:`ice_lac`, recorded, not
    applied).

    Parameters
    ----------
    proj : sxtflow.core.Projections
        ``data`` (angles, rows, cols) counts (or transmission), ``theta`` radians,
        ``flats``/``darks`` counts, ``pixel_nm``.
    algorithm : {"fbp", "sirt", "sirt-tv", "auto"}
        "auto" picks with :func:`auto_algorithm` from the tilt range. FBP for full rotations; for limited tilt ranges (missing wedge) "sirt-tv" (SIRT
        alternated with 2D total-variation denoising, :func:`sirt` with ``tv_weight``;
        at ±60° its RMSE is 35–60 % below FBP's, plain SIRT's 20–25 %, but it lowers the
        contrast of small compartments: see ``docs/reconstruction.md``) or plain "sirt".
        Not for full rotations (worse than FBP there).
    center : "auto" or float
        Rotation axis as a pixel-centre column (ours; tomopy's = ours + 0.5) of the
        *original* detector: unbinned, uncropped pixels.
    backend : {"auto", "builtin", "astra", "tomopy"}
        "auto" = "builtin" (deterministic and tested); "astra" (astra-toolbox CPU, GPLv3)
        and "tomopy" only on request and when importable.
    filter_name : str
        FBP filter, one of :data:`FILTERS`.
    iterations : int
        SIRT / SIRT-TV iterations (SIRT: 100 — it semi-converges; SIRT-TV: 200–300).
    outlier_threshold : float, optional
        Zinger threshold on the line integrals (see :func:`remove_outliers`).
    slab_rows : int, optional
        Rows reconstructed at once; default 32 for FBP (each slab reads the whole sparse
        back-projector once: 32 rows cost ~20 % less CPU than 8 at 512³, the same volume)
        and 8 for SIRT.
    stripe : bool
        Remove detector stripes (ring artefacts) with :func:`remove_stripes`.
    stripe_size : int
        Median width (detector pixels) for the stripe removal.
    align : bool
        Align the tilt series (cross-correlation, then re-projection matching).
    align_iterations : int
        Re-projection matching iterations at most.
    binning : int
        Average ``binning`` × ``binning`` detector pixels (after cropping; voxel size
        grows).
    crop_rows, crop_cols : (int, int), optional
        Keep detector rows / columns ``start … stop − 1`` (original detector pixels,
        ``stop`` exclusive, ``0 ≤ start < stop ≤ size``; see :func:`crop_projections`)
        of the projections, flats and darks before binning. ``None``: no crop. The
        reconstructed volume is (rows, cols, cols) of the cropped, binned detector.
    tv_weight : float
        TV weight for ``algorithm="sirt-tv"`` in **µm⁻¹** (LAC units; ice ≈ 0.1 µm⁻¹),
        applied every 10 iterations; default 0.01 (0.005–0.01 best at ±60°, noise-free
        and 3000 photons/px). Ignored by the other algorithms.

    Returns
    -------
    sxtflow.core.Volume
        ``data`` float32 (z, y, x) in µm⁻¹; ``voxel_nm`` = ``pixel_nm × binning``
        (isotropic); ``meta`` with ``unit``, ``center_px`` (pixel-centre column of the
        cropped, binned detector: the reconstruction grid), ``center_px_detector`` (the
        same axis in original detector pixels), ``algorithm``, ``backend``, ``filter``,
        ``iterations``, ``tv_weight_per_um`` (SIRT-TV), ``n_angles``, ``tilt_range_deg``
        ([min, max]), ``ice_lac_per_um``, ``n_clipped``, ``binning``, ``crop_rows``,
        ``crop_cols`` (``[start, stop]`` in original detector pixels, or None),
        ``stripe_removal``,
        and with ``align``: ``align_shifts_px`` ((drow, dcol) per projection, binned px),
        ``align_residual`` (RMS line-integral misfit per projection),
        ``align_shift_rms_px``, ``align_residual_max``.

    Raises
    ------
    ValueError
        Unknown options, or unknown pixel size.
    sxtflow.core.InputError
        Raw counts without flats, or unusable flats/darks.
    """
    algorithm = _check_options(
        proj, algorithm, backend, filter_name, iterations, binning, tv_weight
    )
    det = _Detector.of(proj, binning, crop_rows, crop_cols)
    pixel_nm = float(proj.pixel_nm) * det.binning
    pixel_um = pixel_nm / 1000.0
    lines, n_clipped = _line_integrals(
        proj, det, outlier_threshold=outlier_threshold, stripe=stripe, stripe_size=stripe_size
    )
    theta = np.asarray(proj.theta, dtype=float)
    fixed_c = _fixed_center(center, det, lines.shape[2])
    align_meta: dict = {}
    if align:
        lines, align_meta = _align(lines, theta, fixed_c, align_iterations)
    c = find_center(lines, theta) if fixed_c is None else fixed_c
    used = "builtin" if backend == "auto" else backend
    rec = _run_algorithm(
        lines, theta, c, used, algorithm, filter_name=filter_name, iterations=iterations,
        slab_rows=slab_rows, tv_weight=float(tv_weight) * pixel_um,
    )  # fmt: skip
    del lines
    rec /= np.float32(pixel_um)
    meta = {
        "unit": "1/um",
        "center_px": float(c),
        "center_px_detector": float(det.to_detector(c)),
        "algorithm": algorithm,
        "backend": used,
        "filter": filter_name if algorithm == "fbp" else None,
        "iterations": int(iterations) if algorithm != "fbp" else None,
        "tv_weight_per_um": float(tv_weight) if algorithm == "sirt-tv" else None,
        "n_angles": int(theta.size),
        "tilt_range_deg": [float(np.rad2deg(theta.min())), float(np.rad2deg(theta.max()))],
        "ice_lac_per_um": float(ice_lac(rec)),
        "n_clipped": int(n_clipped),
        "binning": det.binning,
        "crop_rows": None if det.crop_rows is None else list(det.crop_rows),
        "crop_cols": None if det.crop_cols is None else list(det.crop_cols),
        "stripe_removal": bool(stripe),
        **align_meta,
    }
    return Volume(rec, (pixel_nm, pixel_nm, pixel_nm), meta)


def _check_options(proj, algorithm, backend, filter_name, iterations, binning, tv_weight) -> str:
    """Refuse unknown or inconsistent options; return the algorithm (``"auto"`` resolved)."""
    if algorithm == "auto":
        algorithm = auto_algorithm(proj.theta, backend)
        log.info("algorithm auto: %s", algorithm)
    if algorithm not in ("fbp", "sirt", "sirt-tv"):
        raise ValueError(f"algorithm must be 'auto', 'fbp', 'sirt' or 'sirt-tv', got {algorithm!r}")
    if algorithm == "sirt-tv" and not (np.isfinite(tv_weight) and tv_weight > 0):
        raise ValueError(f"tv_weight must be a positive LAC in µm⁻¹, got {tv_weight}")
    if algorithm == "sirt-tv" and backend in ("astra", "tomopy"):
        raise ValueError(f"algorithm 'sirt-tv' is built-in only, not for backend {backend!r}")
    if backend not in ("auto", *BACKENDS):
        raise ValueError(f"backend must be 'auto', 'builtin', 'astra' or 'tomopy', got {backend!r}")
    if filter_name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose one of {', '.join(FILTERS)}")
    if proj.pixel_nm is None or not proj.pixel_nm > 0:
        raise ValueError(
            "the projections carry no pixel size: give voxel_nm (the pixel size in nm) "
            "in the sample sheet"
        )
    if int(binning) < 1:
        raise ValueError(f"binning must be ≥ 1, got {binning}")
    if algorithm != "fbp" and not int(iterations) >= 1:
        raise ValueError(f"{algorithm} needs iterations ≥ 1, got {iterations}")
    return algorithm


@dataclass(frozen=True)
class _Detector:
    """The cropped, binned detector the volume is reconstructed on, and its mapping to the
    original detector's pixel-centre columns."""

    binning: int
    crop_rows: tuple[int, int] | None
    crop_cols: tuple[int, int] | None

    @classmethod
    def of(cls, proj: Projections, binning, crop_rows, crop_cols) -> _Detector:
        shape = np.shape(proj.data)[1:]
        if len(shape) != 2:
            raise ValueError(f"projections must be (angles, rows, cols), got {np.shape(proj.data)}")
        return cls(
            int(binning),
            _check_crop(crop_rows, shape[0], "crop_rows"),
            _check_crop(crop_cols, shape[1], "crop_cols"),
        )

    @property
    def col0(self) -> int:
        return 0 if self.crop_cols is None else self.crop_cols[0]

    def prepare(self, fields: np.ndarray) -> np.ndarray:
        """Crop, then bin (the same for data, flats and darks)."""
        cropped = crop_projections(fields, self.crop_rows, self.crop_cols)
        return bin_projections(cropped, self.binning)

    # binned column j averages detector columns col0 + j·b … col0 + j·b + b − 1: its
    # centre is detector column col0 + j·b + (b − 1)/2
    def to_grid(self, u: float) -> float:
        """Original detector column → column of the cropped, binned detector."""
        return (u - self.col0 - (self.binning - 1) / 2) / self.binning

    def to_detector(self, c: float) -> float:
        """Column of the cropped, binned detector → original detector column."""
        return c * self.binning + (self.binning - 1) / 2 + self.col0


def _line_integrals(
    proj: Projections,
    det: _Detector,
    *,
    outlier_threshold: float | None = None,
    stripe: bool = False,
    stripe_size: int = 5,
) -> tuple[np.ndarray, int]:
    """Cropped, binned, normalised projections as line integrals (−ln transmission).

    Returns the line integrals ``(angles, rows, cols)`` float32 (zingers and stripes removed
    when asked) and the number of non-positive transmissions clipped by :func:`normalize`.
    """
    raw = det.prepare(proj.data)
    n_clipped = 0
    if proj.meta.get("normalized"):
        trans = np.asarray(raw, dtype=np.float32)
    else:
        if proj.flats is None:
            raise InputError(
                None,
                "raw projections without flat fields: cannot normalise "
                "(set meta['normalized'] if the data are already transmission)",
            )
        flats = np.asarray(proj.flats)
        flats = flats[None] if flats.ndim == 2 else flats
        darks = None
        if proj.darks is not None:
            darks = np.asarray(proj.darks)
            darks = det.prepare(darks[None] if darks.ndim == 2 else darks)
        trans, n_clipped = normalize(
            raw,
            det.prepare(flats),
            darks,
            return_count=True,
            flat_positions=proj.meta.get("flat_positions"),
        )
    del raw
    lines = minus_log(trans)
    del trans
    if outlier_threshold is not None:
        lines = remove_outliers(lines, outlier_threshold)
    if stripe:
        lines = remove_stripes(lines, size=stripe_size)
    return lines, n_clipped


def _fixed_center(center, det: _Detector, n_cols: int) -> float | None:
    """A given centre (original detector column) on the reconstruction grid; None for auto."""
    if isinstance(center, str):
        if center != "auto":
            raise ValueError(f"center must be 'auto' or a number, got {center!r}")
        return None
    c = det.to_grid(float(center))
    if not 0 <= c <= n_cols - 1:
        lo, hi = det.to_detector(0), det.to_detector(n_cols - 1)
        changed = det.crop_cols is not None or det.binning > 1
        raise ValueError(
            f"center {float(center):g} is not a detector column: the rotation axis must lie "
            f"within columns {lo:g}..{hi:g} (pixel-centre index"
            f"{', after cropping/binning' if changed else ''}); use 'auto' to find it"
        )
    return c


def _align(lines, theta, fixed_c, iterations) -> tuple[np.ndarray, dict]:
    """Aligned line integrals (coarse cross-correlation, then re-projection matching) and
    the ``align_*`` metadata."""
    coarse = align_coarse(lines, theta)
    c0 = fixed_c
    if c0 is None:
        c0 = find_center(shift_projections(lines, -coarse), theta)
    shifts, resid = align_projections(
        lines, theta, center=c0, iterations=iterations, initial=coarse
    )
    meta = {
        "align_shifts_px": np.round(shifts, 4).tolist(),
        "align_residual": np.round(resid, 6).tolist(),
        "align_shift_rms_px": float(np.sqrt(np.mean(shifts**2))),
        "align_residual_max": float(resid.max()),
    }
    log.info(
        "align: RMS shift %.2f px, residual max %.4g (projection %d)",
        meta["align_shift_rms_px"], meta["align_residual_max"], int(np.argmax(resid)),
    )  # fmt: skip
    return shift_projections(lines, -shifts), meta


def _run_algorithm(
    lines, theta, center, backend, algorithm, *, filter_name, iterations, slab_rows, tv_weight
) -> np.ndarray:
    """The volume (per pixel units) by ``algorithm`` on ``backend``; ``tv_weight`` per pixel."""
    if backend == "tomopy":
        return _tomopy_recon(lines, theta, center, algorithm, filter_name, iterations)
    if backend == "astra":
        return _astra_recon(lines, theta, center, algorithm, filter_name, iterations)
    if algorithm == "fbp":
        rows = FBP_SLAB_ROWS if slab_rows is None else slab_rows
        return fbp(lines, theta, center=center, filter_name=filter_name, slab_rows=rows)
    slab_rows = SIRT_SLAB_ROWS if slab_rows is None else slab_rows
    return sirt(
        lines, theta, center=center, iterations=iterations, slab_rows=slab_rows,
        tv_weight=tv_weight if algorithm == "sirt-tv" else 0.0,
    )  # fmt: skip
