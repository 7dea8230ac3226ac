"""Calibration of a reconstruction: the LAC of the ice around the cell, and scaling to it."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ._center import _parabola_vertex

log = logging.getLogger("sxtflow")


def ice_lac(
    volume_data: np.ndarray, *, margin: float = 0.1, bins: int = 256, sigma_bins: float = 2.0
) -> float:
    """Estimate the LAC of the ice/buffer around the cell.

    The mode (peak of a Gaussian-smoothed histogram, refined by a parabola) of the
    voxels inside the cylinder inscribed in the (y, x) square, excluding an outer
    margin where reconstruction artefacts live. Assumes ice is the most frequent
    material inside the cylinder.

    Parameters
    ----------
    volume_data : ndarray, shape (z, y, x)
        Reconstruction in µm⁻¹.
    margin : float
        Fraction of the cylinder radius excluded at its edge (at least 2 voxels).
    bins : int
    sigma_bins : float
        Smoothing of the histogram, in bins.

    Returns
    -------
    float
        Ice LAC in the units of ``volume_data`` (µm⁻¹); NaN if no voxel qualifies.
    """
    vol = np.asarray(volume_data)
    if vol.ndim != 3:
        raise ValueError(f"volume must be (z, y, x), got shape {vol.shape}")
    ny, nx = vol.shape[1:]
    r = min(ny, nx) // 2
    rin = r - max(2.0, margin * r)
    yy, xx = np.ogrid[:ny, :nx]
    mask = (yy - ny // 2) ** 2 + (xx - nx // 2) ** 2 <= rin**2
    zstep = max(1, int(np.ceil(vol.shape[0] * mask.sum() / 2e7)))
    vals = vol[::zstep][:, mask].astype(np.float64).ravel()
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return float("nan")
    lo, hi = np.percentile(vals, [0.5, 99.5])
    if not hi > lo:
        return float(lo)
    hist, edges = np.histogram(vals, bins=bins, range=(lo, hi))
    hist = ndimage.gaussian_filter1d(hist.astype(float), sigma_bins, mode="constant")
    k = int(np.argmax(hist))
    frac = _parabola_vertex(hist[k - 1], hist[k], hist[k + 1]) if 0 < k < bins - 1 else 0.0
    width = edges[1] - edges[0]
    return float(edges[0] + (k + 0.5 + frac) * width)


def normalize_to_ice(data: np.ndarray, measured: float, reference: float = 0.10) -> np.ndarray:
    """Scale a reconstruction so that its ice reads ``reference`` µm⁻¹.

    Parameters
    ----------
    data : ndarray
        Reconstruction (µm⁻¹).
    measured : float
        Ice LAC measured in ``data`` (e.g. :func:`ice_lac`).
    reference : float
        Expected ice LAC in µm⁻¹ (~0.10 at 517–520 eV).

    Returns
    -------
    ndarray of float32, ``data * reference / measured``.
    """
    if not (np.isfinite(measured) and measured > 0):
        raise ValueError(f"measured ice LAC must be positive, got {measured}")
    return (np.asarray(data, dtype=np.float32) * np.float32(reference / measured)).astype(
        np.float32, copy=False
    )
