"""Flat/dark normalisation (flats before/after interpolated), −log and zinger removal."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..core import InputError

log = logging.getLogger("sxtflow")


def normalize(
    data: np.ndarray,
    flats: np.ndarray,
    darks: np.ndarray | None,
    *,
    eps: float = 1e-6,
    return_count: bool = False,
    flat_positions=None,
):
    """Flat/dark-field correction: transmission ``(data − dark) / (flat − dark)``.

    With ``flat_positions`` (flats taken before and after the scan, or in between), each
    projection gets the flat linearly interpolated in acquisition order between the mean
    flats of the neighbouring flat series, which corrects a beam that drifts during the scan.

    Parameters
    ----------
    data : ndarray, shape (angles, rows, cols)
        Raw counts.
    flats : ndarray, shape (n, rows, cols) or (rows, cols)
        Open-beam images (counts); their mean is used.
    darks : ndarray, shape (n, rows, cols) or (rows, cols), or None
        Dark images (counts); their mean is used. ``None`` means zero dark current.
    eps : float
        Floor for the transmission. Values that are not positive after dark subtraction
        (noise in almost opaque regions, dead pixels) are clipped to ``eps`` and counted;
        the count is logged as a warning.
    return_count : bool
        Also return the number of clipped values.
    flat_positions : array_like of float, shape (n,), optional
        When each flat was taken, in projection indices: ``k − 0.5`` = after ``k``
        projections (so ``-0.5`` = before the scan, ``angles − 0.5`` = after it). Flats
        with the same position form one series (averaged); projection ``i`` uses the linear
        interpolation between the series just before and just after it (the nearest one
        outside that range). ``None``: one mean flat for all.

    Returns
    -------
    transmission : ndarray of float32, shape (angles, rows, cols)
    n_clipped : int
        Only when ``return_count`` is true.

    Raises
    ------
    sxtflow.core.InputError
        (a ``ValueError``) when the mean flat is not above the mean dark for more than a
        quarter of the pixels (flats and darks swapped, or no beam).
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"data must be (angles, rows, cols), got shape {data.shape}")
    flat = _mean_field(flats, data.shape[1:], "flats")
    dark = (
        np.zeros(data.shape[1:]) if darks is None else _mean_field(darks, data.shape[1:], "darks")
    )
    series = _flat_series(flats, flat_positions, data.shape)
    den = flat - dark
    bad_den = ~(den > 0)
    frac = float(bad_den.mean())
    if frac > 0.25:
        raise InputError(
            None,
            f"flat field is not above the dark field for {100 * frac:.0f}% of the pixels: "
            "flats and darks swapped, or no beam in the flats?",
        )
    den = np.where(bad_den, 1.0, den).astype(np.float32)
    out = data.astype(np.float32) - dark.astype(np.float32)
    if series is None:
        out /= den
    else:
        pos, means = series
        idx = np.arange(data.shape[0], dtype=float)
        hi = np.clip(np.searchsorted(pos, idx), 1, len(pos) - 1)
        w = np.clip((idx - pos[hi - 1]) / (pos[hi] - pos[hi - 1]), 0.0, 1.0)
        for i in range(data.shape[0]):  # one projection at a time: memory of one flat
            f = (1.0 - w[i]) * means[hi[i] - 1] + w[i] * means[hi[i]] - dark
            out[i] /= np.where(bad_den | ~(f > 0), den, f).astype(np.float32)
        log.info(
            "normalize: flats interpolated between %d series at projection positions %s",
            len(pos), ", ".join(f"{v:g}" for v in pos),
        )  # fmt: skip
    clip = ~(out > eps)  # also catches NaN
    n_clip = int(np.count_nonzero(clip))
    out[clip] = eps
    if bad_den.any():
        out[:, bad_den] = 1.0  # no usable flat: treat as no absorption
    n_bad = int(bad_den.sum()) * data.shape[0]
    total = n_clip + n_bad
    if total:
        log.warning(
            "normalize: %d of %d values clipped to transmission %g (non-positive after dark "
            "subtraction), %d detector pixels with flat <= dark",
            n_clip,
            out.size,
            eps,
            int(bad_den.sum()),
        )
    return (out, total) if return_count else out


def _flat_series(flats, positions, shape):
    """``(positions, mean flats)`` of the distinct flat series, or None for one series."""
    if positions is None:
        return None
    arr = np.asarray(flats, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    pos = np.asarray(positions, dtype=float).ravel()
    if pos.size != arr.shape[0]:
        raise ValueError(f"{pos.size} flat positions for {arr.shape[0]} flats")
    if not np.all(np.isfinite(pos)):
        raise ValueError("flat positions must be finite projection indices")
    uniq = np.unique(pos)
    if uniq.size < 2:
        return None
    means = np.stack([arr[pos == u].mean(axis=0) for u in uniq])
    return uniq, means


def _mean_field(arr, shape, what) -> np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != tuple(shape) or arr.shape[0] == 0:
        raise ValueError(f"{what} have shape {arr.shape}, expected (n, {shape[0]}, {shape[1]})")
    return arr.mean(axis=0)


def minus_log(transmission: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """Line integrals ``−ln(T)`` from transmission, with ``T`` clipped to ``[eps, ∞)``.

    Parameters
    ----------
    transmission : ndarray, any shape
    eps : float
        Smallest transmission used (NaN becomes ``eps`` too).

    Returns
    -------
    ndarray of float32, same shape (dimensionless line integrals).
    """
    t = np.asarray(transmission, dtype=np.float32)
    t = np.where(t > eps, t, np.float32(eps))
    return (-np.log(t)).astype(np.float32, copy=False)


def remove_outliers(proj: np.ndarray, threshold: float, *, size: int = 3) -> np.ndarray:
    """Replace zingers (isolated spikes) by the local median, projection by projection.

    Parameters
    ----------
    proj : ndarray, shape (angles, rows, cols)
        Projections (counts, transmission or line integrals).
    threshold : float
        A value is an outlier when ``|value − median| > threshold`` (same units as ``proj``).
    size : int
        Median filter width in (rows, cols) within each projection.

    Returns
    -------
    ndarray of float32, shape (angles, rows, cols)
        A corrected copy; the number of replaced values is logged.
    """
    proj = np.asarray(proj, dtype=np.float32)
    if proj.ndim != 3:
        raise ValueError(f"proj must be (angles, rows, cols), got shape {proj.shape}")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    fsize = (1, min(size, proj.shape[1]), min(size, proj.shape[2]))
    out = proj.copy()
    n = 0
    step = max(1, int(2**24 // max(proj[0].size, 1)))
    for a in range(0, proj.shape[0], step):
        chunk = proj[a : a + step]
        med = ndimage.median_filter(chunk, size=fsize, mode="reflect")
        bad = np.abs(chunk - med) > threshold
        out[a : a + step][bad] = med[bad]
        n += int(bad.sum())
    log.info("remove_outliers: replaced %d of %d values", n, proj.size)
    return out
