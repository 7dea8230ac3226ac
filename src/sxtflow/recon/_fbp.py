"""Filtered back-projection (the filters of :func:`skimage.transform.iradon`), and when it
applies: angles covering a full rotation (:func:`auto_algorithm`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import fft as sp_fft

from ..progress import progress
from ._projector import _check_sino, _default_center, _n_threads, _projector

log = logging.getLogger("sxtflow")


#: Filters accepted by :func:`fbp` (the names of :func:`skimage.transform.iradon`).
FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def _padded_size(n_cols: int) -> int:
    return max(64, 1 << int(math.ceil(math.log2(2 * n_cols))))


def _fourier_filter(size: int, filter_name: str) -> np.ndarray:
    """Real frequency response (``rfft`` layout) of the windowed ramp filter.

    The ramp is the transform of the band-limited spatial kernel (h[0] = 1/4,
    h[odd k] = −1/(πk)², 0 otherwise), i.e. ≈ |f| in cycles per pixel without a DC hole.
    """
    if filter_name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose one of {', '.join(FILTERS)}")
    k = np.zeros(size)
    k[0] = 0.25
    odd = np.arange(1, size, 2)
    dist = np.minimum(odd, size - odd)
    k[odd] = -1.0 / (np.pi * dist) ** 2
    resp = np.fft.rfft(k).real
    f = np.fft.rfftfreq(size)  # cycles / pixel, 0 … 0.5
    if filter_name == "shepp-logan":
        resp *= np.sinc(f)
    elif filter_name == "cosine":
        resp *= np.cos(np.pi * f)
    elif filter_name == "hamming":
        resp *= 0.54 + 0.46 * np.cos(2 * np.pi * f)
    elif filter_name == "hann":
        resp *= 0.5 + 0.5 * np.cos(2 * np.pi * f)
    return resp


def _angle_weights(theta: np.ndarray) -> np.ndarray:
    """Quadrature weights summing to π (a full 180° worth), for any angular coverage.

    Each angle gets its share Δθ_i of the sampled range (half the distance to each
    neighbour; the end angles get a full step), then all are scaled by π / Σ Δθ_i.
    For N evenly spaced angles this is π/N per angle = Δθ · π / (N·Δθ); for a limited
    tilt range it normalises by the actual coverage, so mean values are preserved.
    """
    n = theta.size
    if n == 1:
        return np.array([np.pi])
    order = np.argsort(theta)
    t = theta[order]
    gaps = np.diff(t)
    d = np.empty(n)
    d[1:-1] = (t[2:] - t[:-2]) / 2
    d[0] = gaps[0]
    d[-1] = gaps[-1]
    if not d.sum() > 0:
        raise ValueError("all projection angles are equal")
    w = np.empty(n)
    w[order] = d * (np.pi / d.sum())
    return w


def _filter_sino(sino, resp, size, shifts=None):
    """Filter (C, angles, cols) along cols; optional sub-pixel shifts (C,) by Fourier phase."""
    n = sino.shape[-1]
    workers = _n_threads()
    spec = sp_fft.rfft(np.asarray(sino, dtype=np.float32), n=size, axis=-1, workers=workers)
    if shifts is None:
        spec *= resp.astype(np.float32)
    else:
        f = np.fft.rfftfreq(size)
        phase = np.exp(-2j * np.pi * np.asarray(shifts, dtype=float)[:, None] * f[None])
        spec *= (resp[None] * phase).astype(np.complex64)[:, None, :]
    out = sp_fft.irfft(spec, n=size, axis=-1, workers=workers)[..., :n]
    return np.ascontiguousarray(out, dtype=np.float32)


def fbp(
    line_integrals: np.ndarray,
    theta,
    *,
    center: float | None = None,
    filter_name: str = "ramp",
    slab_rows: int = 32,
) -> np.ndarray:
    """Filtered back-projection (fast, vectorised; same geometry as ``iradon(circle=True)``).

    Parameters
    ----------
    line_integrals : ndarray, shape (angles, rows, cols)
        Dimensionless line integrals (−ln transmission).
    theta : array_like, shape (angles,)
        Projection angles in radians (any coverage; see Notes).
    center : float, optional
        Rotation axis as a pixel-centre detector column; default ``cols // 2``
        (tomopy's centre = ours + 0.5).
    filter_name : {"ramp", "shepp-logan", "cosine", "hamming", "hann"}
        Ramp filter and apodisation window, as in :func:`skimage.transform.iradon`.
    slab_rows : int
        Detector rows reconstructed at once (bounds the working memory; the result does not
        depend on it). Each slab reads the whole sparse back-projector once, so 32 rows
        cost ~20 % less CPU than 8 at 512³.

    Returns
    -------
    ndarray of float32, shape (rows, cols, cols) = (z, y, x)
        LAC × pixel size (divide by the pixel size in µm for µm⁻¹); zero outside the
        inscribed circle.

    Notes
    -----
    Projections are zero-padded to the next power of two ≥ 2 × cols and filtered by FFT;
    the back-projection interpolates linearly at ``s = x cos θ − y sin θ + center``.
    Angles are weighted by their share of the sampled range, normalised to a total of π
    (``π / (N Δθ)`` × Δθ for an even series): for a limited tilt range (e.g. ±60°) this
    keeps the mean value of objects right instead of scaling it by coverage / 180°.
    """
    data, theta = _check_sino(line_integrals, theta)
    n_ang, n_rows, n = data.shape
    center = _default_center(n) if center is None else float(center)
    size = _padded_size(n)
    resp = _fourier_filter(size, filter_name)
    w = _angle_weights(theta).astype(np.float32)
    proj = _projector(n, theta, center)
    out = np.zeros((n_rows, n, n), dtype=np.float32)
    slab_rows = max(1, int(slab_rows))
    starts = range(0, n_rows, slab_rows)
    for lo in progress(starts, len(starts), "FBP"):
        hi = min(lo + slab_rows, n_rows)
        sino = np.asarray(data[:, lo:hi], dtype=np.float32).transpose(1, 0, 2)
        q = _filter_sino(sino, resp, size)
        q *= w[None, :, None]
        out[lo:hi][:, proj.mask] = proj.back(q)
    return out


FULL_ROTATION_DEG = 170.0


def angular_coverage(theta) -> float:
    """Angular range a tilt series samples (radians): the span of the angles plus one step.

    Each projection stands for an interval one step wide, so 16 angles 0°, 11.25°, …,
    168.75° cover the full 180° although they span 168.75°. The step is the median spacing of
    the sorted angles; one angle covers nothing.

    Examples
    --------
    >>> round(float(np.rad2deg(angular_coverage(np.deg2rad(np.arange(16) * 11.25)))), 2)
    180.0
    >>> round(float(np.rad2deg(angular_coverage(np.deg2rad(np.arange(-60, 61, 2.0))))), 2)
    122.0
    """
    theta = np.sort(np.asarray(theta, dtype=float).ravel())
    if theta.size < 2:
        return 0.0
    return float(theta[-1] - theta[0] + np.median(np.diff(theta)))


def auto_algorithm(theta, backend: str = "builtin") -> str:
    """The reconstruction algorithm for a tilt range: FBP or, with a missing wedge, SIRT-TV.

    Parameters
    ----------
    theta : array_like
        Projection angles in radians.
    backend : str
        ``"astra"`` and ``"tomopy"`` have no SIRT-TV: they get plain ``"sirt"``.

    Returns
    -------
    str
        ``"fbp"`` when the angles cover at least :data:`FULL_ROTATION_DEG` (170°; span plus
        one step, :func:`angular_coverage`), else ``"sirt-tv"`` (``"sirt"`` for astra/tomopy).

    Examples
    --------
    >>> auto_algorithm(np.deg2rad(np.arange(0, 180, 1.0)))
    'fbp'
    >>> auto_algorithm(np.deg2rad(np.arange(-60, 61, 1.0)))
    'sirt-tv'
    >>> auto_algorithm(np.deg2rad(np.arange(-60, 61, 1.0)), "astra")
    'sirt'
    """
    if angular_coverage(theta) >= np.deg2rad(FULL_ROTATION_DEG):
        return "fbp"
    return "sirt" if backend in ("astra", "tomopy") else "sirt-tv"
