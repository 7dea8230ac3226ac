"""Wide Gaussian features from a lattice: a Gaussian of large σ is band-limited, so its
values on every ``stride``-th voxel determine it everywhere (cubic B-spline interpolation).

A block's features need a halo as wide as the widest filter (4σ: 32 voxels for σ = 8), so
in a block of 64³ voxels the σ = 8 smoothing alone filters 2–4 times the voxels of the
block's other features. Sampling ``G_σ * f`` on a lattice of spacing ``stride`` loses
nothing above the lattice's Nyquist frequency ``π / stride`` as long as the Gaussian's
response there, ``exp(−π² σ² / (2 stride²))``, is negligible (σ ≥ 2·stride: below 3e-9).
"""

from __future__ import annotations

import numpy as np

from ._coarse import _run_parallel
from ._features import FeatureSpec
from ._filters import _radius, gaussian_kernel

_EXT = 8  # lattice samples beyond each end of an axis (the B-spline prefilter's edge)


def wide_scales(spec: FeatureSpec, stride: int) -> tuple[float, ...]:
    """Scales of ``spec`` worth taking from a lattice of spacing ``stride`` (voxels).

    A scale qualifies when only the ``gaussian`` family is computed at it, σ ≥ 2·stride
    (band-limited at the lattice's Nyquist frequency) and its filter is wider than every
    other feature's (else the block's halo stays as wide and nothing is saved).

    Examples
    --------
    >>> spec = FeatureSpec(sigmas=(0.7, 1.6), families=("gaussian", "ggm"),
    ...                    family_sigmas={"gaussian": (0.7, 1.6, 8.0)})
    >>> wide_scales(spec, 2)
    (8.0,)
    >>> wide_scales(spec, 8)
    ()
    """
    stride = int(stride)
    if stride < 1:
        return ()
    cand = [s for s in spec.all_sigmas if spec.families_at(s) == ("gaussian",) and s >= 2 * stride]
    rest = [s for s in spec.all_sigmas if s not in cand]
    halo = max((spec.support(s) for s in rest), default=0)
    return tuple(s for s in cand if spec.support(s) > halo)


def near_spec(spec: FeatureSpec, wide) -> FeatureSpec | None:
    """``spec`` without the ``gaussian`` channels at the scales ``wide`` (None if nothing
    is left)."""
    wide = {float(s) for s in wide}
    per_family = {}
    for fam in spec.families:
        keep = tuple(s for s in spec.scales(fam) if not (fam == "gaussian" and float(s) in wide))
        if keep:
            per_family[fam] = keep
    if not per_family:
        if not spec.include_raw:
            return None
        return FeatureSpec(sigmas=(1.0,), families=(), include_raw=True)
    return FeatureSpec(
        sigmas=tuple(sorted({s for v in per_family.values() for s in v})),
        families=tuple(per_family),
        include_raw=spec.include_raw,
        family_sigmas=per_family,
    )


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """Indices outside ``0 … n−1`` mirrored as scipy's ``reflect`` (``d c b a | a b c d``)."""
    k = np.mod(idx, 2 * n)
    return np.where(k < n, k, 2 * n - 1 - k)


def _band(positions: np.ndarray, n: int, kernel: np.ndarray, start: int) -> np.ndarray:
    """``(len(positions), n)`` matrix: the kernel's taps around each position (index
    ``start`` is column 0)."""
    r = (len(kernel) - 1) // 2
    band = np.zeros((len(positions), n), dtype=np.float32)
    rows = np.arange(len(positions))
    for j, w in enumerate(kernel):  # convolution: out[i] = Σ_j k[j] · a[pos_i − (j − r)]
        band[rows, positions - (j - r) - start] = w
    return band


def lattice_gaussian(volume, sigma: float, stride: int, *, slab: int = 16, n_jobs: int = 1):
    """``G_σ * volume`` (mirrored borders) at voxels ``stride·(j − 8) + stride // 2``.

    Parameters
    ----------
    volume : array-like, shape (z, y, x)
    sigma : float
        Scale in voxels (the kernel of :func:`sxtflow.segment.compute_features`).
    stride : int
        Lattice spacing in voxels.
    slab, n_jobs
        Lattice planes per step and threads (each on its own slab).

    Returns
    -------
    ndarray, shape (⌈z/stride⌉ + 16, ⌈y/stride⌉ + 16, ⌈x/stride⌉ + 16), float32
        8 samples beyond each end of each axis (of the mirrored volume).
    """
    from threadpoolctl import threadpool_limits

    stride = int(stride)
    shape = tuple(int(n) for n in volume.shape)
    pos = [stride * (np.arange(-(-n // stride) + 2 * _EXT) - _EXT) + stride // 2 for n in shape]
    k = gaussian_kernel(float(sigma), 0)
    r = _radius(float(sigma))
    yi = _mirror(np.arange(pos[1][0] - r, pos[1][-1] + r + 1), shape[1])
    xi = _mirror(np.arange(pos[2][0] - r, pos[2][-1] + r + 1), shape[2])
    by = _band(pos[1], len(yi), k, pos[1][0] - r)
    bx = _band(pos[2], len(xi), k, pos[2][0] - r)
    out = np.empty(tuple(len(p) for p in pos), dtype=np.float32)

    def one(i0: int) -> None:
        zp = pos[0][i0 : i0 + slab]
        lo = zp[0] - r
        zi = _mirror(np.arange(lo, zp[-1] + r + 1), shape[0])
        z0, z1 = int(zi.min()), int(zi.max()) + 1
        block = np.asarray(volume[z0:z1], dtype=np.float32)
        # the band's columns folded onto the planes read (mirrored planes add up), then
        # along y and x on the few filtered planes only
        band = np.zeros((len(zp), z1 - z0), dtype=np.float32)
        np.add.at(band.T, zi - z0, _band(zp, len(zi), k, lo).T)
        a = (band @ block.reshape(z1 - z0, -1)).reshape(len(zp), *shape[1:])
        a = a[:, yi][:, :, xi] @ bx.T  # (z, y, x')
        out[i0 : i0 + len(zp)] = np.matmul(by, a)  # (z, y', x')

    with threadpool_limits(limits=1, user_api="blas"):  # as the coarse pass
        _run_parallel(one, list(range(0, len(pos[0]), slab)), None, n_jobs, "wide channels")
    return out


def _bspline_weights(x: np.ndarray, stride: int, size: int):
    """Cubic B-spline weights ``(len(x), size)`` of lattice samples for voxels ``x``."""
    u = (x - stride // 2) / stride + _EXT
    i = np.floor(u).astype(np.int64)
    t = u - i
    w = np.zeros((len(x), size), dtype=np.float32)
    rows = np.arange(len(x))
    for d, wd in (
        (-1, (1 - t) ** 3 / 6),
        (0, (3 * t**3 - 6 * t**2 + 4) / 6),
        (1, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6),
        (2, t**3 / 6),
    ):
        w[rows, i + d] = wd
    return w


class WideChannels:
    """Wide Gaussian channels of a volume, interpolated from their lattice samples.

    Parameters
    ----------
    volume : array-like, shape (z, y, x)
    sigmas : sequence of float
        Scales (voxels), each ≥ 2·``stride`` (see :func:`wide_scales`).
    stride : int
        Lattice spacing in voxels.
    n_jobs : int
        Threads for the lattice samples.

    Notes
    -----
    Memory: ``(n / stride + 16)³`` float32 per scale (80 MB for a 512³ volume at
    stride 2). The values differ from the exact filter by float32 rounding and the
    interpolation (measured on a 160×256×256 crop of the 512³ benchmark tomogram at
    σ = 8, stride 2: ≤ 1.2e-6 µm⁻¹ on values ≈ 0.2 µm⁻¹, borders included).

    Examples
    --------
    >>> from sxtflow.segment import compute_features
    >>> vol = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32)
    >>> wide = WideChannels(vol, (8.0,), stride=2)
    >>> box = (slice(3, 20), slice(0, 40), slice(30, 40))
    >>> spec = FeatureSpec(sigmas=(8.0,), families=("gaussian",), include_raw=False)
    >>> exact = compute_features(vol, spec, block=vol.shape)[0][box]
    >>> bool(np.abs(wide.box(box)[0] - exact).max() < 1e-5)
    True
    """

    def __init__(self, volume, sigmas, stride: int = 2, n_jobs: int = 1):
        from scipy import ndimage as ndi

        self.sigmas = tuple(float(s) for s in sigmas)
        if any(s < 2 * int(stride) for s in self.sigmas):
            raise ValueError(f"scales {self.sigmas} must be ≥ 2·stride = {2 * int(stride)}")
        self.stride = int(stride)
        self.coefficients = [
            ndi.spline_filter(
                lattice_gaussian(volume, s, self.stride, n_jobs=n_jobs),
                order=3,
                mode="mirror",
                output=np.float32,
            )
            for s in self.sigmas
        ]

    def box(self, box) -> np.ndarray:
        """The channels over a box of the volume: ``(len(sigmas), *box shape)``, float32."""
        ws, window = [], []
        for sl, m in zip(box, self.coefficients[0].shape, strict=True):
            w = _bspline_weights(np.arange(sl.start, sl.stop), self.stride, m)
            cols = np.flatnonzero(w.any(axis=0))
            lo, hi = int(cols[0]), int(cols[-1]) + 1
            ws.append(w[:, lo:hi])
            window.append(slice(lo, hi))
        out = np.empty((len(self.sigmas), *(len(w) for w in ws)), dtype=np.float32)
        for c, coef in enumerate(self.coefficients):
            a = np.tensordot(ws[0], coef[tuple(window)], axes=(1, 0))  # (z, y', x')
            a = np.matmul(ws[1], a)  # (z, y, x')
            out[c] = a @ ws[2].T
        return out
