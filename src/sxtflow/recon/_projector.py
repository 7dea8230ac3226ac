"""The parallel-beam projector pair: a sparse back-projector and its exact adjoint.

The back-projector is a sparse matrix (one row per voxel inside the inscribed circle,
two entries per angle: linear interpolation between the two nearest detector columns).
Its transpose is the pixel-driven forward projector used by SIRT, so the pair is exactly
adjoint. Matrices are built per geometry, cached (one geometry at a time) when they fit
in ``MATRIX_BUDGET_BYTES`` and otherwise built in blocks of voxels on the fly.
A slab of ``slab_rows`` detector rows is reconstructed at once, so the working memory is
bounded by the slab size (plus the matrix). Units: "per pixel" (line integrals are
dimensionless; volumes are LAC × pixel size).
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import sparse

log = logging.getLogger("sxtflow")


#: Largest projector matrix kept in memory between slabs/iterations (bytes).
MATRIX_BUDGET_BYTES = 1 << 30


def _default_center(n_cols: int) -> float:
    return float(n_cols // 2)


def _check_sino(line_integrals, theta):
    data = np.asarray(line_integrals)
    if data.ndim == 2:
        data = data[:, None, :]
    if data.ndim != 3:
        raise ValueError(f"line integrals must be (angles, rows, cols), got shape {data.shape}")
    theta = np.asarray(theta, dtype=float).ravel()
    if theta.size != data.shape[0]:
        raise ValueError(f"{theta.size} angles for {data.shape[0]} projections")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta contains NaN/inf")
    return data, theta


def _circle_grid(n: int, stride: int = 1):
    """Voxel coordinates (relative to ``n // 2``) inside the inscribed circle.

    Returns the boolean mask on the strided grid and the (y, x) offsets of its voxels.
    """
    c = n // 2
    idx = np.arange(0, n, stride) - c
    yy, xx = np.meshgrid(idx, idx, indexing="ij")
    mask = yy**2 + xx**2 <= c**2
    return mask, yy[mask].astype(np.float64), xx[mask].astype(np.float64)


class _Projector:
    """Sparse back-projector ``B`` (voxels × angles·columns) and its transpose.

    Each detector row of every angle is stored with ``gl`` zero guard columns on the left
    and ``gr`` on the right, so that voxels whose ray falls off the detector interpolate
    zeros instead of needing masks; ``back`` pads and ``forward`` crops accordingly.
    """

    def __init__(self, n_cols, theta, center, stride=1):
        self.n_det = int(n_cols)
        self.theta = np.asarray(theta, dtype=float)
        self.center = float(center)
        self.mask, self.ys, self.xs = _circle_grid(self.n_det, stride)
        self.n_pix = self.ys.size
        self.n_ang = self.theta.size
        rmax = float(np.sqrt(self.ys**2 + self.xs**2).max(initial=0.0))
        lo_i = math.floor(self.center - rmax) - 2
        hi_i = math.floor(self.center + rmax) + 3
        self.gl = max(0, -lo_i)
        self.width = self.gl + self.n_det + max(0, hi_i - (self.n_det - 1))
        if self.n_ang * self.width >= 2**31:
            raise ValueError("too many angles × columns for the sparse projector")
        per_pix = 2 * self.n_ang * 8 + 8
        budget_block = max(1, int(MATRIX_BUDGET_BYTES // per_pix))
        self.cacheable = budget_block >= self.n_pix
        self.threads = _n_threads()
        # at least one block per thread so that blocks can be built and applied in parallel
        self.block = max(1, min(budget_block, -(-self.n_pix // self.threads)))
        self._blocks = None

    def _build(self, lo, hi):
        n_ang, width = self.n_ang, self.width
        cos = np.cos(self.theta).astype(np.float32)
        sin = np.sin(self.theta).astype(np.float32)
        s = np.multiply.outer(self.xs[lo:hi].astype(np.float32), cos)
        s -= np.multiply.outer(self.ys[lo:hi].astype(np.float32), sin)
        s += np.float32(self.center + self.gl)
        i0f = np.floor(s)
        s -= i0f  # s is now the weight of the right neighbour
        # row layout: all left neighbours (one per angle), then all right neighbours
        data = np.empty((hi - lo, 2, n_ang), dtype=np.float32)
        np.subtract(1.0, s, out=data[:, 0])
        data[:, 1] = s
        del s
        ind = np.empty((hi - lo, 2, n_ang), dtype=np.int32)
        base = (np.arange(n_ang, dtype=np.int32) * width)[None]
        np.add(i0f, base, out=ind[:, 0], casting="unsafe")
        del i0f
        np.add(ind[:, 0], 1, out=ind[:, 1])
        indptr = np.arange(hi - lo + 1, dtype=np.int64) * (2 * n_ang)
        if indptr[-1] < 2**31:
            indptr = indptr.astype(np.int32)
        return sparse.csr_matrix(
            (data.reshape(-1), ind.reshape(-1), indptr), shape=(hi - lo, n_ang * width)
        )

    def _groups(self):
        """Yield lists of (slice, matrix) that can be applied in parallel."""
        if self._blocks is not None:
            yield self._blocks
            return
        los = list(range(0, self.n_pix, self.block))
        built = []
        with _pool(self.threads) as pool:
            for g in range(0, len(los), self.threads):
                part = los[g : g + self.threads]
                mats = list(
                    pool.map(lambda lo: self._build(lo, min(lo + self.block, self.n_pix)), part)
                )
                group = [
                    (slice(lo, min(lo + self.block, self.n_pix)), m)
                    for lo, m in zip(part, mats, strict=True)
                ]
                if self.cacheable:
                    built.extend(group)
                yield group
        if self.cacheable:
            self._blocks = built

    def back(self, q):
        """``q`` (C, angles, cols) → (C, n_pix): sum over angles of interpolated values."""
        c = q.shape[0]
        qq = np.zeros((self.n_ang, self.width, c), dtype=np.float32)
        qq[:, self.gl : self.gl + self.n_det] = np.moveaxis(q, 0, -1)
        qq = qq.reshape(-1, c)
        out = np.empty((self.n_pix, c), dtype=np.float32)

        def apply(item):
            sl, mat = item
            out[sl] = mat @ qq

        with _pool(self.threads) as pool:
            for group in self._groups():
                list(pool.map(apply, group))
        return out.T

    def forward(self, f):
        """``f`` (C, n_pix) → (C, angles, cols) (pixel-driven, adjoint of :meth:`back`)."""
        c = f.shape[0]
        ff = np.ascontiguousarray(f.T, dtype=np.float32)
        out = np.zeros((self.n_ang * self.width, c), dtype=np.float32)
        with _pool(self.threads) as pool:
            for group in self._groups():
                for part in pool.map(lambda item: item[1].T @ ff[item[0]], group):
                    out += part
        out = out.reshape(self.n_ang, self.width, c)[:, self.gl : self.gl + self.n_det]
        return np.ascontiguousarray(np.moveaxis(out, -1, 0))


def _n_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


class _pool:
    """A thread pool, or a serial stand-in for one thread (numpy/scipy release the GIL)."""

    def __init__(self, n):
        self.n = n
        self.ex = None

    def __enter__(self):
        if self.n > 1:
            self.ex = ThreadPoolExecutor(self.n)
        return self

    def map(self, fn, items):
        return self.ex.map(fn, items) if self.ex else map(fn, items)

    def __exit__(self, *exc):
        if self.ex:
            self.ex.shutdown()


_CACHE: dict = {}


def _projector(n_cols, theta, center, stride=1) -> _Projector:
    theta = np.asarray(theta, dtype=float)
    key = (int(n_cols), float(center), int(stride), theta.tobytes())
    proj = _CACHE.get(key)
    if proj is None:
        proj = _Projector(n_cols, theta, center, stride)
        _CACHE.clear()  # keep one geometry only: matrices can be large
        if proj.cacheable:
            _CACHE[key] = proj
    return proj


def forward_project(
    volume: np.ndarray, theta, *, center: float | None = None, slab_rows: int = 8
) -> np.ndarray:
    """Line integrals of a volume (the projector used by :func:`sirt`).

    Pixel-driven with linear interpolation onto the detector; agrees with
    :func:`skimage.transform.radon` (``circle=True``) to about 1–2 % and is the exact
    adjoint of :func:`back_project`. Voxels outside the inscribed circle are ignored.

    Parameters
    ----------
    volume : ndarray, shape (z, y, x) with y == x, or (y, x)
        Values per pixel (LAC × pixel size) — or µm⁻¹, then multiply the result by
        the pixel size in µm.
    theta : array_like, shape (angles,)
        Angles in radians.
    center : float, optional
        Rotation centre as a detector pixel-centre column; default ``x // 2``.
    slab_rows : int
        Rows (z) projected at once.

    Returns
    -------
    ndarray of float32, shape (angles, z, x) (or (angles, x) for a 2D input)
    """
    vol = np.asarray(volume, dtype=np.float32)
    squeeze = vol.ndim == 2
    if squeeze:
        vol = vol[None]
    if vol.ndim != 3 or vol.shape[1] != vol.shape[2]:
        raise ValueError(f"volume must be (z, n, n), got shape {vol.shape}")
    theta = np.asarray(theta, dtype=float).ravel()
    n = vol.shape[2]
    center = _default_center(n) if center is None else float(center)
    proj = _projector(n, theta, center)
    out = np.empty((theta.size, vol.shape[0], n), dtype=np.float32)
    for lo in range(0, vol.shape[0], slab_rows):
        hi = min(lo + slab_rows, vol.shape[0])
        out[:, lo:hi] = proj.forward(vol[lo:hi][:, proj.mask]).transpose(1, 0, 2)
    return out[:, 0] if squeeze else out


def back_project(
    line_integrals: np.ndarray, theta, *, center: float | None = None, slab_rows: int = 8
) -> np.ndarray:
    """Unfiltered, unweighted back-projection (adjoint of :func:`forward_project`).

    Parameters
    ----------
    line_integrals : ndarray, shape (angles, rows, cols)
    theta : array_like, shape (angles,)
        Radians.
    center : float, optional
        Pixel-centre column of the rotation axis; default ``cols // 2``.

    Returns
    -------
    ndarray of float32, shape (rows, cols, cols); zero outside the inscribed circle.
    """
    data, theta = _check_sino(line_integrals, theta)
    n_ang, n_rows, n = data.shape
    center = _default_center(n) if center is None else float(center)
    proj = _projector(n, theta, center)
    out = np.zeros((n_rows, n, n), dtype=np.float32)
    for lo in range(0, n_rows, slab_rows):
        hi = min(lo + slab_rows, n_rows)
        out[lo:hi][:, proj.mask] = proj.back(data[:, lo:hi].transpose(1, 0, 2))
    return out
