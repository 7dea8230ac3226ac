"""SIRT and SIRT-TV (SIRT alternated with 2D total-variation denoising) for limited tilt
ranges.
"""

from __future__ import annotations

import logging

import numpy as np

from ..progress import progress
from ._projector import _check_sino, _default_center, _projector

log = logging.getLogger("sxtflow")


def sirt(
    line_integrals: np.ndarray,
    theta,
    *,
    center: float | None = None,
    iterations: int = 100,
    nonneg: bool = True,
    slab_rows: int = 8,
    x0: np.ndarray | None = None,
    tv_weight: float = 0.0,
    tv_every: int = 10,
    tv_iterations: int = 100,
) -> np.ndarray:
    """Simultaneous iterative reconstruction (SIRT), optionally with total variation (TV).

    ``x ← x + C Aᵀ R (b − A x)`` with ``A`` = :func:`forward_project`, ``Aᵀ`` =
    :func:`back_project`, ``R`` = 1 / row sums of ``A``, ``C`` = 1 / column sums.

    With ``tv_weight > 0`` (SIRT-TV, ASD-POCS-like) every ``tv_every`` iterations, and
    after the last one, each slice ``(y, x)`` is denoised by Chambolle's TV projection
    (:func:`skimage.restoration.denoise_tv_chambolle`, ``min ½‖u − x‖² + w·TV(u)`` with
    ``w = tv_weight``) and clipped at 0. Cells are piecewise constant in LAC, so TV fills
    the missing wedge of a limited tilt range with flat regions instead of streaks; the
    regularisation is 2D (within slices: the missing wedge lies in the ``(y, x)`` plane),
    so the result does not depend on ``slab_rows``. Unlike plain SIRT, which
    semi-converges (its error grows again after ~100 iterations at ±60°), SIRT-TV keeps
    improving for several hundred iterations.

    Parameters
    ----------
    line_integrals : ndarray, shape (angles, rows, cols)
    theta : array_like, shape (angles,)
        Radians.
    center : float, optional
        Pixel-centre column of the rotation axis; default ``cols // 2``.
    iterations : int
    nonneg : bool
        Clip negative values after every iteration (LAC is never negative).
    slab_rows : int
        Rows reconstructed together.
    x0 : ndarray, shape (rows, cols, cols), optional
        Starting volume (per-pixel units, e.g. an FBP result); default zeros.
    tv_weight : float
        TV weight in the units of the reconstruction, i.e. **LAC × pixel size** (per
        pixel; :func:`reconstruct` takes it in µm⁻¹ and multiplies by the pixel size in
        µm). 0 (default) is plain SIRT. Measured at ±60° on a simulated yeast cell:
        0.002–0.005 µm⁻¹ × pixel size (2–5 % of the ice LAC) is best (see
        ``docs/reconstruction.md``); larger weights flatten small organelles.
    tv_every : int
        SIRT iterations between TV steps (the effective regularisation strength scales
        as ``tv_weight / tv_every``).
    tv_iterations : int
        Largest number of Chambolle iterations per TV step.

    Returns
    -------
    ndarray of float32, shape (rows, cols, cols)
        LAC × pixel size, zero outside the inscribed circle.
    """
    data, theta = _check_sino(line_integrals, theta)
    n_ang, n_rows, n = data.shape
    center = _default_center(n) if center is None else float(center)
    if x0 is not None and np.shape(x0) != (n_rows, n, n):
        raise ValueError(f"x0 has shape {np.shape(x0)}, expected {(n_rows, n, n)}")
    tv_weight = float(tv_weight)
    if not (np.isfinite(tv_weight) and tv_weight >= 0):
        raise ValueError(f"tv_weight must be ≥ 0, got {tv_weight}")
    tv_every = int(tv_every)
    if tv_every < 1:
        raise ValueError(f"tv_every must be ≥ 1, got {tv_every}")
    if int(iterations) < 1:
        raise ValueError(f"SIRT needs iterations ≥ 1, got {iterations} (0 would return zeros)")
    if tv_weight > 0:
        from skimage.restoration import denoise_tv_chambolle
    proj = _projector(n, theta, center)
    if not proj.cacheable:
        log.warning("SIRT: projector exceeds MATRIX_BUDGET_BYTES; rebuilding it each iteration")
    ones_pix = np.ones((1, proj.n_pix), dtype=np.float32)
    row_sum = proj.forward(ones_pix)[0]
    inv_row = np.where(row_sum > 1e-6, 1.0 / np.maximum(row_sum, 1e-6), 0.0).astype(np.float32)
    col_sum = proj.back(np.ones((1, n_ang, n), dtype=np.float32))[0]
    inv_col = np.where(col_sum > 1e-6, 1.0 / np.maximum(col_sum, 1e-6), 0.0).astype(np.float32)
    out = np.zeros((n_rows, n, n), dtype=np.float32)
    slab_rows = max(1, int(slab_rows))
    starts = range(0, n_rows, slab_rows)
    name = "SIRT" if tv_weight == 0 else f"SIRT-TV (weight {tv_weight:.3g}/px)"
    n_it = int(iterations)
    for lo in progress(starts, len(starts), f"{name} ({n_it} iterations)"):
        hi = min(lo + slab_rows, n_rows)
        b = np.asarray(data[:, lo:hi], dtype=np.float32).transpose(1, 0, 2)
        x = (
            np.zeros((hi - lo, proj.n_pix), dtype=np.float32)
            if x0 is None
            else np.asarray(x0[lo:hi], dtype=np.float32)[:, proj.mask].copy()
        )
        its = range(n_it)
        if len(starts) == 1:
            its = progress(its, len(its), f"{name} iterations")
        for k in its:
            resid = b - proj.forward(x)
            resid *= inv_row
            x += proj.back(resid) * inv_col
            if tv_weight > 0 and ((k + 1) % tv_every == 0 or k + 1 == n_it):
                vol = np.zeros((hi - lo, n, n), dtype=np.float32)
                vol[:, proj.mask] = x
                vol = denoise_tv_chambolle(
                    vol, weight=tv_weight, max_num_iter=int(tv_iterations), channel_axis=0
                )
                x = np.asarray(vol[:, proj.mask], dtype=np.float32)
            if nonneg:
                np.maximum(x, 0, out=x)
        out[lo:hi][:, proj.mask] = x
    return out
