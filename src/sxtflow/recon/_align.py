"""Tilt-series alignment: cross-correlation (coarse), then re-projection matching."""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from ._center import _parabola_vertex
from ._fbp import FULL_ROTATION_DEG, angular_coverage, fbp
from ._iterative import sirt
from ._projector import _check_sino, _default_center, forward_project

log = logging.getLogger("sxtflow")


def shift_projections(line_integrals: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    """Move the content of each projection by ``shifts_px[i] = (drow, dcol)`` pixels.

    Cubic spline interpolation, edges continued by the nearest value (as a detector
    with empty margins). Use ``-shifts`` to undo a measured misalignment.
    """
    data = np.asarray(line_integrals, dtype=np.float32)
    shifts = np.asarray(shifts_px, dtype=float).reshape(data.shape[0], 2)
    out = np.empty_like(data)
    for i in range(data.shape[0]):
        if np.any(shifts[i]):
            out[i] = ndimage.shift(data[i], shifts[i], order=3, mode="nearest")
        else:
            out[i] = data[i]
    return out


def _subpixel_peak(xc: np.ndarray) -> float:
    k = int(np.argmax(xc))
    n = xc.size
    frac = _parabola_vertex(xc[(k - 1) % n], xc[k], xc[(k + 1) % n])
    lag = k if k <= n // 2 else k - n
    return lag + frac


def _xcorr_shift_1d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shift of each profile ``a[i]`` relative to ``b`` (or ``b[i]``) along the last axis."""
    n = a.shape[-1]
    size = 1 << int(math.ceil(math.log2(2 * n)))
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return np.array([_subpixel_peak(x) for x in np.atleast_2d(xc)])


def _translation_basis(theta: np.ndarray) -> np.ndarray:
    """Columns 1, cos θ, sin θ: horizontal shifts that a rigid object translation (or an
    axis offset) produces; unidentifiable from the projections alone."""
    return np.stack([np.ones_like(theta), np.cos(theta), np.sin(theta)], axis=1)


def _recentre(shifts: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Remove the parts of the shifts that only move the object: the mean vertical shift
    and the (1, cos θ, sin θ) component of the horizontal shifts, so the object stays
    where it was and the axis stays at the centre found for it."""
    out = np.array(shifts, dtype=float)
    out[:, 0] -= out[:, 0].mean()
    basis = _translation_basis(theta)
    coef, *_ = np.linalg.lstsq(basis, out[:, 1], rcond=None)
    out[:, 1] -= basis @ coef
    return out


def _row_margin(shifts: np.ndarray, n_rows: int) -> slice:
    """Detector rows that stay in view in every projection, given vertical shifts."""
    m = int(math.ceil(np.abs(shifts[:, 0]).max(initial=0.0))) + 2
    m = min(m, max(0, (n_rows - 1) // 2 - 1))
    return slice(m, n_rows - m)


def align_coarse(line_integrals: np.ndarray, theta, *, mass_tolerance: float = 0.01) -> np.ndarray:
    """Coarse tilt-series alignment by cross-correlation, shifts ``(angles, 2)`` in px.

    * Vertical (rows, along the rotation axis): in parallel beam every projection has the
      same row profile (its sum over columns is the mass of that slice), so each row
      profile is cross-correlated with the median profile (twice, re-measuring after
      the first correction).
    * Horizontal, using only rows that stay in view: when the projected mass is constant
      over angles (coefficient of variation < ``mass_tolerance``: the sample stays in the
      field of view), the deviation of each projection's centre of mass from the
      least-squares sinusoid ``a + b cos θ + c sin θ``; otherwise each column profile is
      cross-correlated with its angular neighbour's and the steps are summed.
    In both cases the rigid-translation part (:func:`_recentre`) is removed.

    Returns
    -------
    ndarray, shape (angles, 2)
        Estimated ``(drow, dcol)`` by which each projection's content was moved
        (pixels); undo with :func:`shift_projections` ``(data, -shifts)``.
    """
    data, theta = _check_sino(line_integrals, theta)
    data = np.asarray(data, dtype=np.float64)
    n_ang, n_rows, _ = data.shape
    rows = data.sum(axis=2)  # (angles, rows)
    drow = np.zeros(n_ang)
    for _ in range(2):
        cur = np.stack(
            [ndimage.shift(r, -d, order=3, mode="nearest") for r, d in zip(rows, drow, strict=True)]
        )
        drow += _xcorr_shift_1d(cur, np.median(cur, axis=0))
        drow -= drow.mean()
    keep = _row_margin(np.stack([drow, drow], 1), n_rows)
    inner = np.stack(
        [ndimage.shift(data[i], (-drow[i], 0), order=3, mode="nearest")[keep] for i in range(n_ang)]
    )
    cols = inner.sum(axis=1)  # (angles, cols)
    mass = cols.sum(axis=1)
    if n_ang > 3 and np.all(mass > 0) and mass.std() / mass.mean() < mass_tolerance:
        dcol = (cols * np.arange(cols.shape[1])).sum(axis=1) / mass
    else:
        order = np.argsort(theta)
        steps = np.zeros(n_ang)
        g = np.gradient(ndimage.gaussian_filter1d(cols, 1.0, axis=-1), axis=-1)
        if n_ang > 1:
            steps[order[1:]] = _xcorr_shift_1d(g[order[1:]], g[order[:-1]])
        dcol = np.zeros(n_ang)
        dcol[order] = np.cumsum(steps[order])
    return _recentre(np.stack([drow, dcol], axis=1), theta)


def _match_shifts(meas: np.ndarray, ref: np.ndarray, keep: slice, keep_cols: slice) -> np.ndarray:
    """Per-projection ``(drow, dcol)`` by which ``meas`` is displaced from ``ref``.

    One Gauss–Newton step of least-squares matching on both images smoothed by a 1-px
    Gaussian: ``meas ≈ ref − d·∇ref`` over the window (``keep`` rows, ``keep_cols``
    columns) that stays in view whatever the shifts, so content entering or leaving the
    detector does not bias the estimate (called repeatedly, it converges).
    """
    m = ndimage.gaussian_filter(meas.astype(np.float64), (0, 1.0, 1.0))
    r = ndimage.gaussian_filter(ref.astype(np.float64), (0, 1.0, 1.0))
    gy = np.gradient(r, axis=1)[:, keep, keep_cols].reshape(r.shape[0], -1)
    gx = np.gradient(r, axis=2)[:, keep, keep_cols].reshape(r.shape[0], -1)
    res = (m - r)[:, keep, keep_cols].reshape(r.shape[0], -1)
    a11, a12, a22 = (gy * gy).sum(1), (gy * gx).sum(1), (gx * gx).sum(1)
    b1, b2 = -(gy * res).sum(1), -(gx * res).sum(1)
    det = a11 * a22 - a12**2
    ok = det > 1e-12 * np.maximum(a11 * a22, 1e-300)
    det = np.where(ok, det, 1.0)
    d = np.stack([(a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det], axis=1)
    d[~ok] = 0.0
    return np.clip(d, -2.0, 2.0)


def align_projections(
    line_integrals: np.ndarray,
    theta,
    *,
    center: float | None = None,
    iterations: int = 6,
    algorithm: str | None = None,
    tolerance_px: float = 0.02,
    initial: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tilt-series alignment: coarse cross-correlation, then re-projection matching.

    Each iteration reconstructs the currently aligned series (FBP for ≥ 170° coverage,
    else 30 non-negative SIRT iterations), re-projects it, measures each projection's
    shift against its re-projection (sub-pixel, upsampled cross-correlation), adds it,
    and re-centres the shifts (:func:`_recentre`: the object stays where the previous
    reconstruction put it — without this the series drifts and the result degrades).

    Parameters
    ----------
    line_integrals : ndarray, shape (angles, rows, cols)
    theta : array_like, shape (angles,)
        Radians.
    center : float, optional
        Rotation axis (pixel-centre column); default ``cols // 2``.
    iterations : int
        Re-projection iterations at most (0: coarse alignment only).
    algorithm : {"fbp", "sirt"}, optional
        Reconstruction used inside the loop; default by angular coverage.
    tolerance_px : float
        Stop when the RMS update falls below this (pixels).
    initial : ndarray, shape (angles, 2), optional
        Starting shifts instead of :func:`align_coarse`.

    Returns
    -------
    shifts : ndarray, shape (angles, 2)
        ``(drow, dcol)`` in pixels by which each projection's content was displaced;
        ``shift_projections(data, -shifts)`` aligns the series.
    residual : ndarray, shape (angles,)
        RMS difference (dimensionless line integral) between each aligned projection and
        the re-projection of the final reconstruction: large values flag projections
        that do not fit (ice change, radiation damage, a bad frame).

    Notes
    -----
    A rigid translation of the whole object (vertical mean, horizontal
    ``a + b cos θ + c sin θ``) cannot be told from misalignment, so it is removed from
    the shifts (compare estimated and true shifts modulo that subspace).
    """
    data, theta = _check_sino(line_integrals, theta)
    data = np.asarray(data, dtype=np.float32)
    n = data.shape[2]
    center = _default_center(n) if center is None else float(center)
    if algorithm is None:
        algorithm = "fbp" if angular_coverage(theta) >= np.deg2rad(FULL_ROTATION_DEG) else "sirt"
    shifts = align_coarse(data, theta) if initial is None else np.array(initial, dtype=float)

    def reproject(shifts):
        aligned = shift_projections(data, -shifts)
        if algorithm == "fbp":
            rec = fbp(aligned, theta, center=center, filter_name="hann")
            np.maximum(rec, 0, out=rec)
        else:
            rec = sirt(aligned, theta, center=center, iterations=30)
        return aligned, forward_project(rec, theta, center=center)

    best = (np.inf, shifts, np.zeros(theta.size))
    done = False
    for it in range(int(iterations) + 1):
        keep = _row_margin(shifts, data.shape[1])
        keep_cols = _row_margin(shifts[:, ::-1], data.shape[2])
        aligned, rep = reproject(shifts)
        residual = np.sqrt(np.mean((aligned[:, keep] - rep[:, keep]) ** 2, axis=(1, 2)))
        score = float(np.mean(residual))
        if score < best[0]:
            best = (score, shifts, residual)
        elif it > 1:
            log.info("align: residual grew (%.4g > %.4g): stop", score, best[0])
            break
        if done or it == int(iterations):
            break
        new = _recentre(shifts + _match_shifts(aligned, rep, keep, keep_cols), theta)
        step = float(np.sqrt(np.mean((new - shifts) ** 2)))
        log.info("align: iteration %d, mean residual %.4g, RMS update %.3f px", it + 1, score, step)
        shifts = new
        done = step < tolerance_px  # evaluate the last update, then stop
    _, shifts, residual = best
    return shifts, residual
