"""The coarse-to-fine pass of prediction: features on a lattice, cells whose class is
certain keep it, the rest is predicted voxel by voxel.
"""

from __future__ import annotations

import numpy as np

from ..progress import progress
from ._features import FeatureSpec
from ._model import _class_columns

# lattice positions per banded product along y and x: each product reads only the window
# of its positions (32 · stride + 2r voxels instead of the whole axis: a fifth of the
# multiply-adds of one dense band at 512³, the same taps)
_CHUNK = 32
# the probability of its most probable class at or above which a lattice point is
# confident (fine_cells, predict_volume's default): at 0.9 the 512³ lymphocyte's ice
# points at 0.8–0.9 (70 k lattice cells, 96 % of them > 20 cells from any non-ice point:
# the reconstruction's rim at the edge of the field of view) went to full resolution and
# came out ice voxel for voxel; at 0.8 the same labels (0 of 134 M voxels differ) for
# 12–15 % less CPU (docs/performance.md, session 24); the same labels on the segmentation
# benchmark's sets. Below 0.8 the lattice barely changes.
CONFIDENT = 0.8


def _conv_at(a: np.ndarray, kernels, axis: int, pos: np.ndarray) -> list[np.ndarray]:
    """``scipy.ndimage.convolve1d(a, k, axis)`` evaluated only at indices ``pos``, for each
    kernel ``k`` of ``kernels`` (all of the same length).

    Matrix products (BLAS) with banded matrices of the taps, all kernels stacked in one
    product, each product over the window of the axis its positions read (the whole run
    of positions along z, ``_CHUNK`` positions at a time along y and x). ``pos`` must be
    ascending and lie at least the kernel radius inside the axis.
    """
    pos = np.asarray(pos)
    n, m, nk = a.shape[axis], len(pos), len(kernels)
    r = (len(kernels[0]) - 1) // 2
    last = axis == a.ndim - 1
    # the axis first (z: already), or last for x, whose lines are contiguous
    moved = a if axis == 0 or last else np.ascontiguousarray(np.moveaxis(a, axis, 0))
    rest = moved.shape[:-1] if last else moved.shape[1:]
    step = m if axis == 0 else _CHUNK
    if step >= m and not last:  # one product: its result is the output (no copy)
        lo, hi = int(pos[0]) - r, int(pos[-1]) + r + 1
        res = _band_of(kernels, pos - lo, hi - lo) @ moved[lo:hi].reshape(hi - lo, -1)
        out = res.reshape(nk, m, *rest)
        return list(out) if axis == 0 else [np.moveaxis(o, 0, axis) for o in out]
    out = np.empty((nk, *rest, m) if last else (nk, m, *rest), dtype=np.float32)
    for i0 in range(0, m, step):
        p = pos[i0 : i0 + step]
        lo, hi = int(p[0]) - r, int(p[-1]) + r + 1
        band = _band_of(kernels, p - lo, hi - lo)
        # single 2D products only: OpenBLAS is very slow on many small batched ones
        if last:
            res = moved.reshape(-1, n)[:, lo:hi] @ band.T
            res = res.reshape(*rest, nk, len(p))
            out[..., i0 : i0 + len(p)] = np.moveaxis(res, -2, 0)
        else:
            res = band @ moved[lo:hi].reshape(hi - lo, -1)
            out[:, i0 : i0 + len(p)] = res.reshape(nk, len(p), *rest)
    if axis == 0 or last:
        return list(out)
    return [np.moveaxis(o, 0, axis) for o in out]


def _band_of(kernels, pos: np.ndarray, n: int) -> np.ndarray:
    """``(len(kernels) · len(pos), n)`` float32: each kernel's taps around each position."""
    r = (len(kernels[0]) - 1) // 2
    band = np.zeros((len(kernels), len(pos), n), dtype=np.float32)
    rows = np.arange(len(pos))
    for k, kernel in enumerate(kernels):
        for j, w in enumerate(kernel):  # out[i] = Σ_j k[j] · a[pos_i − (j − r)]
            band[k, rows, pos - (j - r)] = w
    return band.reshape(len(kernels) * len(pos), n)


def _lattice_features(volume, spec: FeatureSpec, zpos, ypos, xpos) -> np.ndarray:
    """Features of ``spec`` at the lattice points ``zpos × ypos × xpos`` of ``volume``.

    Equal to :func:`sxtflow.segment.block_features` at those voxels up to float32
    rounding (the same separable Gaussian-derivative kernels, evaluated only where
    needed). Families: raw, gaussian, log, ggm, dog, hessian (not the structure tensor).

    Returns
    -------
    ndarray, shape (F, len(zpos), len(ypos), len(xpos)), float32
    """
    from ._features import _DOG_RATIO, _read_padded
    from ._filters import _FIRST, _SECOND, eigvalsh3, gaussian_kernel

    if "structure_tensor" in spec.families:
        raise ValueError("lattice features do not support the structure tensor")
    h = spec.halo
    z0, z1 = int(zpos[0]), int(zpos[-1]) + 1
    core = (slice(z0, z1), slice(0, volume.shape[1]), slice(0, volume.shape[2]))
    padded = _read_padded(volume, core, h)
    if not np.isfinite(padded).all():
        raise ValueError(f"volume contains NaN/inf values near z = {z0}..{z1}")
    pz, py, px = np.asarray(zpos) - z0 + h, np.asarray(ypos) + h, np.asarray(xpos) + h
    shape = (len(pz), len(py), len(px))
    out = np.empty((spec.n_features, *shape), dtype=np.float32)
    index = {n: i for i, n in enumerate(spec.names())}
    if spec.include_raw:
        out[index["raw"]] = padded[np.ix_(pz, py, px)]

    def derivatives(sigma, orders):  # z, then x, then y (the smallest array last)
        def conv(arr, axis, wanted, pos):  # {order: arr filtered along axis} in one product
            wanted = sorted(wanted)
            kernels = [gaussian_kernel(sigma, o) for o in wanted]
            return dict(zip(wanted, _conv_at(arr, kernels, axis, pos), strict=True))

        res = {}
        zs = conv(padded, 0, {o[0] for o in orders}, pz)
        for oz, z_arr in zs.items():
            zxs = conv(z_arr, 2, {o[2] for o in orders if o[0] == oz}, px)
            for ox, zx_arr in zxs.items():
                ys = conv(zx_arr, 1, {o[1] for o in orders if o[:3:2] == (oz, ox)}, py)
                for oy, arr in ys.items():
                    res[oz, oy, ox] = arr
        return res

    for sigma in spec.all_sigmas:
        fams = spec.families_at(sigma)
        s = f"{float(sigma):g}"
        orders = set()
        if "gaussian" in fams or "dog" in fams:
            orders.add((0, 0, 0))
        if "ggm" in fams:
            orders.update(_FIRST)
        if "hessian" in fams:
            orders.update(_SECOND)
        if "log" in fams:
            orders.update(((2, 0, 0), (0, 2, 0), (0, 0, 2)))
        d = derivatives(sigma, sorted(orders))
        if "gaussian" in fams:
            out[index[f"gaussian_s{s}"]] = d[(0, 0, 0)]
        if "log" in fams:
            out[index[f"log_s{s}"]] = (d[(2, 0, 0)] + d[(0, 2, 0)]) + d[(0, 0, 2)]
        if "ggm" in fams:
            gz, gy, gx = (d[o] for o in _FIRST)
            out[index[f"ggm_s{s}"]] = np.sqrt(gz * gz + gy * gy + gx * gx)
        if "dog" in fams:
            narrow = derivatives(_DOG_RATIO * sigma, [(0, 0, 0)])[(0, 0, 0)]
            out[index[f"dog_s{s}"]] = d[(0, 0, 0)] - narrow
        if "hessian" in fams:
            ev = eigvalsh3([d[o] for o in _SECOND])
            for i in range(3):
                out[index[f"hessian_ev{i}_s{s}"]] = ev[i]
    return out


def _lattice(n: int, stride: int) -> np.ndarray:
    """Lattice positions along an axis of ``n`` voxels: the centre of each cell of
    ``stride`` voxels (cell ``i`` = voxels ``stride·i … stride·i + stride − 1``)."""
    return np.minimum(np.arange(-(-n // stride)) * stride + stride // 2, n - 1)


def coarse_pass(
    volume,
    model,
    card: dict,
    *,
    stride: int = 4,
    mask=None,
    spec: FeatureSpec | None = None,
    columns=None,
    slab: int = 8,
    n_jobs: int = 1,
) -> np.ndarray:
    """Class probabilities on a lattice of every ``stride``-th voxel (the coarse pass).

    The same model on the same (full-resolution) features, evaluated only at the centre
    voxel of each ``stride``³ cell: ``stride``³ times fewer voxels through the trees, and
    the separable filters evaluated only where needed.

    Parameters
    ----------
    volume : array-like, shape (z, y, x)
        Calibrated tomogram (µm⁻¹).
    model, card
        As for :func:`predict_volume`.
    stride : int
        Lattice spacing in voxels.
    mask : ndarray of bool, shape (z, y, x), optional
        Voxels to classify; lattice points outside get probability 0.
    spec, columns : optional
        A subset spec and its columns in the card's spec (:func:`subset_spec`); default
        every feature of the card.
    slab : int
        Lattice planes computed at a time (bounds memory: one slab per thread).
    n_jobs : int
        Threads, each on its own slab (the filters' matrix products and the trees release
        the GIL); the result does not depend on it.

    Returns
    -------
    ndarray, shape (C, ⌈z/stride⌉, ⌈y/stride⌉, ⌈x/stride⌉), float32
        Probabilities, channels in ascending class value.
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    full = FeatureSpec.from_dict(card["feature_spec"])
    if spec is None:
        spec, columns = full, np.arange(full.n_features)
    values, cols = _class_columns(model, card)
    shape = tuple(int(n) for n in volume.shape)
    zpos, ypos, xpos = (_lattice(n, stride) for n in shape)
    out = np.zeros((values.size, len(zpos), len(ypos), len(xpos)), dtype=np.float32)

    def one(i0: int) -> None:
        zp = zpos[i0 : i0 + slab]
        f = _lattice_features(volume, spec, zp, ypos, xpos)
        n = f[0].size
        X = np.zeros((n, full.n_features), dtype=np.float32)
        X[:, columns] = f.reshape(spec.n_features, n).T
        del f
        keep = np.ones(n, dtype=bool)
        if mask is not None:
            keep = np.asarray(mask)[np.ix_(zp, ypos, xpos)].ravel()
        proba = np.zeros((n, values.size), dtype=np.float32)
        if keep.any():
            proba[keep] = model.predict_proba(X[keep])[:, cols]
        out[:, i0 : i0 + len(zp)] = proba.T.reshape(values.size, len(zp), len(ypos), len(xpos))

    # one BLAS thread: multi-threaded OpenBLAS spins on these small products
    with threadpool_limits(limits=1, user_api="blas"):
        _run_parallel(one, list(range(0, len(zpos), slab)), model, n_jobs, "coarse")
    return out


def _run_parallel(work, items, model, n_jobs: int, what: str) -> None:
    """``work(item)`` for every item on ``n_jobs`` threads, the model on one thread each
    (its ``n_jobs`` restored after); progress lines named ``what``."""
    from concurrent.futures import ThreadPoolExecutor

    old = getattr(model, "n_jobs", None)
    if old is not None:
        model.n_jobs = 1  # parallel over the items instead
    try:
        if int(n_jobs) <= 1:
            for item in progress(items, len(items), what):
                work(item)
        else:
            with ThreadPoolExecutor(int(n_jobs)) as pool:
                for _ in progress(pool.map(work, items), len(items), what):
                    pass
    finally:
        if old is not None:
            model.n_jobs = old


def fine_cells(
    coarse_probabilities: np.ndarray,
    *,
    confident: float = CONFIDENT,
    margin: int = 1,
    coarse_channels=None,
) -> np.ndarray:
    """Lattice cells to classify at full resolution: the coarse answer is not trusted there.

    A lattice cell keeps its lattice point's class when that class is one of
    ``coarse_channels``, its probability is at least ``confident``, no lattice point
    within ``margin`` cells is unsure (below the bar, or of another class than
    ``coarse_channels``) and every neighbouring lattice point (26-connected, inside the
    mask) has the same most probable class. Every other cell is classified at full
    resolution: class boundaries, answers the trees disagree on, and the classes that
    may hold structures thinner than the lattice.

    Confidence alone does not protect such a structure: a lattice point 2 voxels beside a
    2-voxel-radius tube is correctly and confidently cytoplasm (it is cytoplasm), so a
    cytoplasm cell would swallow a tube that no lattice point lies in
    (``tests/test_fast_predict.py``). Hence :func:`predict_volume` lets only ice keep
    the coarse answer by default.

    Parameters
    ----------
    coarse_probabilities : ndarray, shape (C, zl, yl, xl)
        From :func:`coarse_pass` (0 everywhere outside the mask).
    confident : float
        Probability of its most probable class at or above which a lattice point is
        confident (> 0.5, so that the most probable class is unique; default
        :data:`CONFIDENT`, 0.8).
    margin : int
        The unsure cells are grown by this many cells (26-connected), so that every
        voxel within ``margin × stride`` voxels of an unsure lattice point is
        classified at full resolution.
    coarse_channels : sequence of int, optional
        Channels whose confident cells may keep the coarse answer; default every channel.

    Returns
    -------
    ndarray of bool, shape (zl, yl, xl)

    Examples
    --------
    >>> p = np.zeros((2, 4, 4, 4), np.float32); p[0] = 1.0
    >>> p[:, :, :, 2:] = np.array([0.05, 0.95], np.float32)[:, None, None, None]
    >>> fine_cells(p, margin=0)[0, 0].astype(int).tolist()  # both sides of the boundary
    [0, 1, 1, 0]
    >>> fine_cells(p, margin=0, coarse_channels=[0])[0, 0].astype(int).tolist()
    [0, 1, 1, 1]
    """
    from scipy import ndimage as ndi

    if not 0.5 < float(confident) <= 1.0:
        raise ValueError(f"confident must be in (0.5, 1], got {confident}")
    p = coarse_probabilities
    n_cls = p.shape[0]
    inside = p.sum(axis=0) > 0
    top = p.argmax(axis=0).astype(np.int16)
    allowed = np.ones(n_cls, dtype=bool)
    if coarse_channels is not None:
        allowed[:] = False
        allowed[np.asarray(list(coarse_channels), dtype=np.int64)] = True
    cube = np.ones((3, 3, 3), dtype=bool)
    unsure = inside & ((p.max(axis=0) < confident) | ~allowed[top])
    if margin > 0 and unsure.any():
        unsure = ndi.binary_dilation(unsure, structure=cube, iterations=int(margin))
    # neighbours outside the mask agree with anything
    hi = ndi.maximum_filter(np.where(inside, top, -1), footprint=cube, mode="nearest")
    lo = ndi.minimum_filter(np.where(inside, top, n_cls), footprint=cube, mode="nearest")
    return inside & (unsure | (hi != top) | (lo != top))
