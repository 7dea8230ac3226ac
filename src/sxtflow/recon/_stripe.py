"""Detector corrections before reconstruction: stripe (ring artefact) removal, cropping and
binning of projections, flats and darks.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

log = logging.getLogger("sxtflow")


def remove_stripes(
    line_integrals: np.ndarray,
    *,
    size: int = 5,
    snr: float = 3.0,
    drop: float = 0.1,
    min_offset: float = 2e-3,
) -> np.ndarray:
    """Remove stripes (→ ring artefacts) from sinograms: detect, then subtract offsets.

    A detector column with a gain error adds the same offset to ``−ln T`` at every
    angle: a vertical stripe in each sinogram ``(angles, cols)``. Written from the
    description of the sorting-based methods of Vo, Atwood and Drakopoulos (Opt.
    Express 26, 2018): each column is sorted along the angle axis and its trimmed mean
    (the ``drop`` fraction of smallest and largest values left out, so moving features
    weigh little) forms a profile across columns; its deviation from a running median
    of width ``size`` flags stripes: deviations above ``snr`` robust standard deviations
    (MAD-based) and above ``min_offset``. The flagged columns and their direct
    neighbours get the offset between the profile and its linear interpolation from the
    unflagged columns on either side, subtracted at every angle; every other value is left
    exactly as it was (a median filter applied everywhere would erode steep edges such
    as the wall of the ice cylinder).

    Parameters
    ----------
    line_integrals : ndarray, shape (angles, rows, cols)
        −ln transmission (dimensionless).
    size : int
        Running-median width across detector columns (pixels), at least twice the widest
        stripe plus one; wider windows flag more real structure (tested: 5 removes
        60–90 % of the error due to 1–2 px stripes, 11 already damages sharp edges).
    snr : float
        Detection threshold in robust standard deviations of the deviations.
    drop : float
        Fraction of each column's sorted values left out at each end.
    min_offset : float
        Smallest stripe offset (line-integral units) that is corrected.

    Returns
    -------
    ndarray of float32, shape (angles, rows, cols)
        The number of corrected columns is logged.
    """
    data = np.asarray(line_integrals, dtype=np.float32)
    if data.ndim != 3:
        raise ValueError(f"line integrals must be (angles, rows, cols), got shape {data.shape}")
    size = int(size)
    if size < 3:
        raise ValueError(f"size must be ≥ 3 pixels, got {size}")
    n_ang = data.shape[0]
    k = min(int(drop * n_ang), (n_ang - 1) // 2)
    srt = np.sort(data, axis=0)
    prof = srt[k : n_ang - k].mean(axis=0, dtype=np.float64)  # (rows, cols)
    dev = prof - ndimage.median_filter(prof, size=(1, size), mode="reflect")
    med = np.median(dev, axis=1, keepdims=True)
    mad = 1.4826 * np.median(np.abs(dev - med), axis=1, keepdims=True)
    mask = np.abs(dev - med) > np.maximum(snr * mad, min_offset)
    mask[:, : size // 2] = False  # the running median is unreliable at the detector edges
    mask[:, prof.shape[1] - size // 2 :] = False
    mask = ndimage.binary_dilation(mask, structure=np.array([[1, 1, 1]], bool))
    # offset = profile minus its linear interpolation across the flagged columns
    cols = np.arange(prof.shape[1], dtype=float)
    offset = np.zeros_like(prof)
    for r in np.flatnonzero(mask.any(axis=1)):
        m = mask[r]
        if m.all():
            continue
        offset[r, m] = prof[r, m] - np.interp(cols[m], cols[~m], prof[r, ~m])
    out = data - offset.astype(np.float32)[None]
    log.info("remove_stripes: corrected %d of %d detector columns", int(mask.sum()), mask.size)
    return out


def bin_projections(data: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` × ``factor`` detector pixels (rows and columns).

    Parameters
    ----------
    data : ndarray, shape (n, rows, cols)
        Projections, flats or darks (any units; averaged).
    factor : int
        Binning factor; trailing rows/columns that do not fill a bin are dropped.

    Returns
    -------
    ndarray of float32, shape (n, rows // factor, cols // factor)
        The pixel size grows by ``factor``.
    """
    data = np.asarray(data, dtype=np.float32)
    f = int(factor)
    if f < 1:
        raise ValueError(f"binning factor must be ≥ 1, got {factor}")
    if f == 1:
        return data
    n, r, c = data.shape
    r2, c2 = r // f, c // f
    if r2 == 0 or c2 == 0:
        raise ValueError(f"cannot bin {data.shape[1:]} pixels by {f}")
    return data[:, : r2 * f, : c2 * f].reshape(n, r2, f, c2, f).mean(axis=(2, 4))


def _check_crop(crop, size: int, what: str) -> tuple[int, int] | None:
    """Validate a ``(start, stop)`` detector-pixel range (``None`` = everything)."""
    if crop is None:
        return None
    try:
        start, stop = (int(v) for v in crop)
        exact = all(float(v) == int(v) for v in crop)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (start, stop) in detector pixels, got {crop!r}") from None
    if not exact:
        raise ValueError(f"{what} must be whole detector pixels, got {crop!r}")
    if not 0 <= start < stop <= size:
        raise ValueError(
            f"{what}={tuple(crop)!r} is empty or out of range: need 0 ≤ start < stop ≤ {size} "
            f"(the detector has {size} {what.split('_')[-1]}; stop is exclusive)"
        )
    return start, stop


def crop_projections(data: np.ndarray, rows=None, cols=None) -> np.ndarray:
    """Keep detector rows ``rows = (start, stop)`` and columns ``cols = (start, stop)``.

    Parameters
    ----------
    data : ndarray, shape (n, rows, cols)
        Projections, flats or darks (any units).
    rows, cols : (int, int), optional
        Detector-pixel ranges, ``stop`` exclusive (Python slicing), ``0 ≤ start < stop ≤
        size``; ``None`` keeps everything. Negative or out-of-range values and empty
        ranges raise ``ValueError``.

    Returns
    -------
    ndarray, shape (n, rows_stop − rows_start, cols_stop − cols_start)
        A view of ``data``. A detector column ``u`` becomes ``u − cols[0]``: shift a
        rotation centre the same way.
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"data must be (n, rows, cols), got shape {data.shape}")
    r = _check_crop(rows, data.shape[1], "crop_rows") or (0, data.shape[1])
    c = _check_crop(cols, data.shape[2], "crop_cols") or (0, data.shape[2])
    return data[:, r[0] : r[1], c[0] : c[1]]
