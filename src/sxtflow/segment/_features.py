"""Multi-scale voxel features for pixel classification, computed block-wise.

The feature set follows ilastik's pixel classification: Gaussian smoothing, Laplacian of
Gaussian, Gaussian gradient magnitude, difference of Gaussians, structure-tensor eigenvalues
and Hessian-of-Gaussian eigenvalues, each at several scales σ (in voxels).

Volumes are processed in blocks. Each block is read with a halo wide enough to hold the
support of every filter (:attr:`FeatureSpec.halo`), filtered, and cropped, so that the
result equals the whole-volume computation while memory is bounded by the block size, not
the volume size. At the volume borders the data are mirrored (``scipy.ndimage`` mode
``"reflect"``: ``d c b a | a b c d | d c b a``).

Normalisation
-------------
Features are **not** standardised per volume. Reconstructed SXT volumes are calibrated in
linear absorption coefficient (LAC, µm⁻¹), a physical quantity, so a classifier trained on
one tomogram's features can be applied to another's as they are. Per-volume z-scoring would
make a vacuole-rich cell's features incomparable with those of a lipid-rich one. Make sure
the input volumes are calibrated (ice ≈ 0.10 µm⁻¹) instead.

Feature definitions (``G_σ`` is a Gaussian of standard deviation σ voxels, truncated at 4σ)
-------------------------------------------------------------------------------------------
``raw``
    The input values.
``gaussian``
    ``G_σ * f``.
``log``
    Laplacian of Gaussian, ``∂²zz + ∂²yy + ∂²xx`` of ``G_σ * f`` (Gaussian derivatives).
``ggm``
    Gaussian gradient magnitude ``|∇(G_σ * f)|``.
``dog``
    Difference of Gaussians ``G_σ * f − G_{0.66σ} * f`` (ilastik's convention).
``structure_tensor``
    Eigenvalues (descending, ``ev0`` largest) of the structure tensor: the outer products of
    Gaussian-derivative gradients at inner scale σ, smoothed at outer scale σ/2.
``hessian``
    Eigenvalues (descending, ``ev0`` largest) of the Hessian of Gaussian at scale σ.

Scales are in voxels and isotropic in voxel units; features are not scale-normalised
(no σ² factor), as in ilastik. Derivatives are separable Gaussian-derivative
convolutions (:func:`gaussian_kernel`, corrected as in vigra to be exact on constants,
ramps and parabolas), with passes shared between families. Eigenvalues use a closed form
(:func:`eigvalsh3`) equal to ``skimage.feature.hessian_matrix_eigvals`` but ~6× faster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..progress import progress
from ._filters import _FIRST, _SECOND, _gaussian_derivatives, _radius, _smooth, eigvalsh3

#: Known feature families and the number of channels each yields per scale.
FAMILIES: dict[str, int] = {
    "gaussian": 1,
    "log": 1,
    "ggm": 1,
    "dog": 1,
    "structure_tensor": 3,
    "hessian": 3,
}

_DOG_RATIO = 0.66
_ST_OUTER_RATIO = 0.5


def _fmt_sigma(sigma: float) -> str:
    return f"{float(sigma):g}"


def _check_scales(values, what: str) -> tuple[float, ...]:
    """Scales as a tuple of positive, finite, unique floats (voxels) or ``ValueError``."""
    scales = tuple(float(v) for v in np.atleast_1d(np.asarray(values, dtype=float)))
    if any(not math.isfinite(v) or v <= 0 for v in scales):
        raise ValueError(f"{what}: scales must be positive and finite voxels, got {scales}")
    if len(set(scales)) != len(scales):
        raise ValueError(f"{what}: duplicate scales in {scales}")
    return scales


@dataclass(frozen=True)
class FeatureSpec:
    """Which features to compute.

    Parameters
    ----------
    sigmas : tuple of float
        Scales in voxels (positive, unique); default ``(0.7, 1.0, 1.6, 3.5, 5.0)``.
    families : tuple of str
        Any of ``"gaussian", "log", "ggm", "dog", "structure_tensor", "hessian"``
        (unique; their order is the channel order).
    include_raw : bool
        Prepend the raw values as channel ``"raw"``.
    family_sigmas : dict of str to tuple of float, optional
        Scales (voxels) for single families instead of ``sigmas``: ilastik's selection
        matrix of families × scales. E.g. ``{"gaussian": (0.7, 1.6, 3.5, 8.0)}`` adds a
        wide smoothing as context (a lymphocyte's nucleus fills most of its cell) without
        the cost of every family at σ = 8. Keys must be in ``families``. Stored as a
        tuple of ``(family, scales)`` pairs in ``families`` order, without entries equal
        to ``sigmas``.

    Raises
    ------
    ValueError
        Unknown family, duplicate entries or a non-positive scale.

    Examples
    --------
    >>> spec = FeatureSpec(sigmas=(1.0,), families=("gaussian", "ggm"),
    ...                    family_sigmas={"gaussian": (1.0, 8.0)})
    >>> spec.names()
    ['raw', 'gaussian_s1', 'gaussian_s8', 'ggm_s1']
    >>> spec.halo
    32
    """

    sigmas: tuple[float, ...] = (0.7, 1.0, 1.6, 3.5, 5.0)
    families: tuple[str, ...] = ("gaussian", "log", "ggm", "dog", "structure_tensor", "hessian")
    include_raw: bool = True
    family_sigmas: tuple[tuple[str, tuple[float, ...]], ...] = ()
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        sigmas = _check_scales(self.sigmas, "sigmas")
        families = (self.families,) if isinstance(self.families, str) else tuple(self.families)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature families {unknown}; known: {', '.join(FAMILIES)}")
        if len(set(families)) != len(families):
            raise ValueError(f"duplicate feature families in {families}")
        given = dict(self.family_sigmas or {})
        stray = sorted(set(given) - set(families))
        if stray:
            raise ValueError(
                f"family_sigmas names {stray}, which are not among the families {families}"
            )
        checked = {f: _check_scales(given[f], f"family_sigmas[{f!r}]") for f in given}
        # canonical: an entry equal to ``sigmas`` is dropped (the same features, one spec)
        per_family = tuple((f, checked[f]) for f in families if f in given and checked[f] != sigmas)
        if any(fam not in given for fam in families) and not sigmas:
            raise ValueError("feature families given but no scales (sigmas)")
        if not families and not self.include_raw:
            raise ValueError("empty feature spec: no families and include_raw=False")
        object.__setattr__(self, "sigmas", sigmas)
        object.__setattr__(self, "families", families)
        object.__setattr__(self, "include_raw", bool(self.include_raw))
        object.__setattr__(self, "family_sigmas", per_family)
        names = ["raw"] if self.include_raw else []
        for fam in families:
            for s in self.scales(fam):
                if FAMILIES[fam] == 1:
                    names.append(f"{fam}_s{_fmt_sigma(s)}")
                else:
                    names.extend(f"{fam}_ev{i}_s{_fmt_sigma(s)}" for i in range(FAMILIES[fam]))
        object.__setattr__(self, "_names", tuple(names))

    def names(self) -> list[str]:
        """Channel names in output order, e.g. ``"gaussian_s1.6"``, ``"hessian_ev0_s1.6"``."""
        return list(self._names)

    @property
    def n_features(self) -> int:
        """Number of output channels ``F``."""
        return len(self._names)

    def scales(self, family: str) -> tuple[float, ...]:
        """Scales (voxels) at which ``family`` is computed (``family_sigmas`` or ``sigmas``)."""
        return dict(self.family_sigmas).get(family, self.sigmas)

    def families_at(self, sigma: float) -> tuple[str, ...]:
        """The families computed at scale ``sigma`` (in ``families`` order)."""
        return tuple(f for f in self.families if float(sigma) in self.scales(f))

    @property
    def all_sigmas(self) -> tuple[float, ...]:
        """Every scale used by some family, ascending."""
        return tuple(sorted({s for f in self.families for s in self.scales(f)}))

    def support(self, sigma: float) -> int:
        """Halo (voxels) needed for the features of this spec at one scale ``sigma``."""
        r = 0
        for fam in self.families_at(sigma):
            if fam == "structure_tensor":
                r = max(r, _radius(sigma) + _radius(_ST_OUTER_RATIO * sigma))
            else:  # dog's second Gaussian (0.66σ) is narrower than the first
                r = max(r, _radius(sigma))
        return r

    @property
    def halo(self) -> int:
        """Halo in voxels added around each block: the widest filter support.

        ``round(4σ)`` for most families and ``round(4σ) + round(2σ)`` when the structure
        tensor (smoothing at σ/2 after derivatives at σ) is included, for the largest σ.
        With this halo block-wise results equal whole-volume results.
        """
        return max((self.support(s) for s in self.all_sigmas), default=0)

    def to_dict(self) -> dict:
        """JSON-serialisable form (round-trips through :meth:`from_dict`).

        ``family_sigmas`` appears only when set, so specs without it (and the models and
        feature stores that recorded them) keep their earlier form.
        """
        d = {
            "sigmas": list(self.sigmas),
            "families": list(self.families),
            "include_raw": self.include_raw,
        }
        if self.family_sigmas:
            d["family_sigmas"] = {f: list(s) for f, s in self.family_sigmas}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        extra = set(d) - {"sigmas", "families", "include_raw", "family_sigmas"}
        if extra:
            raise ValueError(f"unknown feature spec keys {sorted(extra)}")
        return cls(
            sigmas=tuple(d.get("sigmas", cls.sigmas)),
            families=tuple(d.get("families", cls.families)),
            include_raw=bool(d.get("include_raw", True)),
            family_sigmas=d.get("family_sigmas") or (),
        )


#: A cheaper spec for segmenting many tomograms: 19 channels instead of 51, chosen by forest
#: feature importance on simulated yeast (the structure tensor and σ = 5 voxels added
#: little), about 5× faster to compute with a smaller halo (14 voxels instead of 30).
FAST_SPEC = FeatureSpec(sigmas=(0.7, 1.6, 3.5), families=("gaussian", "log", "ggm", "hessian"))


# --------------------------------------------------------------------------- blocks


def iter_blocks(shape, block) -> list[tuple[slice, ...]]:
    """Tile an array ``shape`` into blocks of at most ``block`` (C order).

    Parameters
    ----------
    shape : tuple of int
    block : tuple of int, same length as ``shape``

    Returns
    -------
    list of tuple of slice
    """
    if len(block) != len(shape):
        raise ValueError(f"block {tuple(block)} must have {len(shape)} dimensions")
    if any(int(b) < 1 for b in block):
        raise ValueError(f"block sizes must be positive, got {tuple(block)}")
    ranges = [
        [slice(s, min(s + int(b), n)) for s in range(0, n, int(b))]
        for n, b in zip(shape, block, strict=True)
    ]
    out: list[tuple[slice, ...]] = [()]
    for r in ranges:
        out = [o + (s,) for o in out for s in r]
    return out


def _read_padded(data, core: tuple[slice, ...], halo: int) -> np.ndarray:
    """Read ``data[core]`` grown by ``halo`` voxels, mirrored (scipy ``reflect``) at borders."""
    read, pad = [], []
    for sl, n in zip(core, data.shape, strict=True):
        lo, hi = sl.start - halo, sl.stop + halo
        read.append(slice(max(lo, 0), min(hi, n)))
        pad.append((max(0, -lo), max(0, hi - n)))
    block = np.asarray(data[tuple(read)], dtype=np.float32)
    if any(p != (0, 0) for p in pad):
        block = np.pad(block, pad, mode="symmetric")
    return block


def _flat(arr: np.ndarray, at, offsets: dict | None):
    """The view ``arr``'s memory as a 1D array and the flat offsets of the voxels ``at``
    (index arrays ``(z, y, x)``) in it, or None when its strides do not allow it
    (negative); ``offsets`` caches the offsets per strides."""
    if any(st < 0 or st % arr.itemsize for st in arr.strides) or not arr.size:
        return None
    step = tuple(st // arr.itemsize for st in arr.strides)
    flat = None if offsets is None else offsets.get(step)
    if flat is None:
        flat = np.asarray(at[0], dtype=np.intp) * step[0]
        flat += np.asarray(at[1], dtype=np.intp) * step[1]
        flat += np.asarray(at[2], dtype=np.intp) * step[2]
        if offsets is not None:
            offsets[step] = flat
    span = sum((n - 1) * st for n, st in zip(arr.shape, step, strict=True)) + 1
    memory = np.lib.stride_tricks.as_strided(arr, shape=(span,), strides=(arr.itemsize,))
    return memory, flat


def _take(arr: np.ndarray, at, offsets: dict | None = None) -> np.ndarray:
    """``arr[at]`` for index arrays ``at = (z, y, x)`` into a 3D view, by one flat
    ``np.take`` over the view's memory (the same values; a 3-array fancy index was ≈ 15×
    slower). ``offsets`` caches the flat offsets per strides."""
    flat = _flat(arr, at, offsets)
    return arr[tuple(at)] if flat is None else np.take(*flat)


def _put(arr: np.ndarray, at, values, offsets: dict | None = None) -> None:
    """``arr[at] = values`` (as :func:`_take`), ``at`` without repeated voxels."""
    flat = _flat(arr, at, offsets)
    if flat is None:
        arr[tuple(at)] = values
    else:
        np.put(*flat, values)


def _features_one_scale(
    padded: np.ndarray, halo: int, sigma: float, spec: FeatureSpec, at=None
) -> dict[str, np.ndarray]:
    """All features of ``spec`` at one ``sigma`` on ``padded`` (core = padded minus ``halo``);
    with ``at`` (index arrays ``(z, y, x)`` into the core), only at those voxels (1D arrays:
    the per-voxel arithmetic, e.g. the eigenvalues, only there; the same values)."""
    sup = spec.support(sigma)
    trim = halo - sup  # this scale needs less context than the widest one
    if trim > 0:
        padded = padded[trim:-trim, trim:-trim, trim:-trim]
    fams = spec.families_at(sigma)
    orders: set[tuple[int, int, int]] = set()
    if "gaussian" in fams or "dog" in fams:
        orders.add((0, 0, 0))
    if "ggm" in fams or "structure_tensor" in fams:
        orders.update(_FIRST)
    if "hessian" in fams:
        orders.update(_SECOND)
    if "log" in fams:
        orders.update(((2, 0, 0), (0, 2, 0), (0, 0, 2)))
    # the derivatives are kept on the core only (grown by the structure tensor's outer
    # radius): the halo is dropped after each pass, so later passes filter less
    if at is not None and "structure_tensor" in fams:
        raise ValueError("features at selected voxels do not support the structure tensor")
    extra = _radius(_ST_OUTER_RATIO * sigma) if "structure_tensor" in fams else 0
    d = _gaussian_derivatives(padded, sigma, sorted(orders), crop=sup - extra)
    grown = d  # the structure tensor's gradients: the core grown by the outer radius
    core = tuple(slice(extra, n - 2 * sup + extra) for n in padded.shape)
    if at is None:
        d = {o: arr[core] for o, arr in d.items()}
    else:  # 1D gathers of the voxels (extra is 0), each order once
        offsets: dict = {}
        d = {o: _take(arr, at, offsets) for o, arr in d.items()}
        grown = None  # the filtered boxes are no longer needed
    s = _fmt_sigma(sigma)
    out: dict[str, np.ndarray] = {}
    if "gaussian" in fams:
        out[f"gaussian_s{s}"] = d[(0, 0, 0)]
    if "log" in fams:
        out[f"log_s{s}"] = (d[(2, 0, 0)] + d[(0, 2, 0)]) + d[(0, 0, 2)]
    if "ggm" in fams:
        gz, gy, gx = (d[o] for o in _FIRST)
        out[f"ggm_s{s}"] = np.sqrt(gz * gz + gy * gy + gx * gx)
    if "dog" in fams:
        narrow = _smooth(padded, _DOG_RATIO * sigma, crop=sup)
        out[f"dog_s{s}"] = d[(0, 0, 0)] - (narrow if at is None else _take(narrow, at))
    if "structure_tensor" in fams:
        grads = [grown[o] for o in _FIRST]
        elems = []
        for i in range(3):
            for j in range(i, 3):
                prod = grads[i] * grads[j]
                elems.append(_smooth(prod, _ST_OUTER_RATIO * sigma, crop=extra))
        ev = eigvalsh3(elems)
        for i in range(3):
            out[f"structure_tensor_ev{i}_s{s}"] = ev[i]
    if "hessian" in fams:
        ev = eigvalsh3([d[o] for o in _SECOND])
        for i in range(3):
            out[f"hessian_ev{i}_s{s}"] = ev[i]
    return out


def _block_features(padded: np.ndarray, halo: int, spec: FeatureSpec, at=None) -> np.ndarray:
    """Features ``(F, *core)`` of one padded block (core = ``padded`` minus ``halo``), or
    ``(F, n)`` at the core voxels ``at`` (index arrays ``(z, y, x)``)."""
    core_shape = tuple(n - 2 * halo for n in padded.shape)
    shape = core_shape if at is None else (len(at[0]),)
    res = np.empty((spec.n_features, *shape), dtype=np.float32)
    index = {name: i for i, name in enumerate(spec.names())}
    if spec.include_raw:
        core = tuple(slice(halo, n - halo) for n in padded.shape)
        res[index["raw"]] = padded[core] if at is None else _take(padded[core], at)
    for sigma in spec.all_sigmas:
        for name, arr in _features_one_scale(padded, halo, sigma, spec, at).items():
            res[index[name]] = arr
    return res


def block_features(data, core: tuple[slice, ...], spec: FeatureSpec, *, at=None) -> np.ndarray:
    """Features of one block of a volume, read with its halo (equal to the whole-volume ones).

    Parameters
    ----------
    data : array-like, shape (z, y, x)
        Real-valued volume (numpy or zarr), e.g. LAC in µm⁻¹.
    core : tuple of 3 slice
        The block (e.g. from :func:`iter_blocks`); the halo ``spec.halo`` around it is read
        too (mirrored at the volume borders).
    spec : FeatureSpec
    at : tuple of 3 int arrays, optional
        Only these voxels of the block (indices ``(z, y, x)`` relative to ``core``, in
        ``0 … n − 1`` along each axis, as from ``np.nonzero``): the filters still run over
        the block, the per-voxel arithmetic (magnitudes, eigenvalues) only here. Not with
        the structure tensor.

    Returns
    -------
    ndarray, shape (F, *core shape), or (F, n) with ``at``, float32
        Channel ``i`` is feature ``spec.names()[i]``; with ``at``, column ``j`` is voxel
        ``j`` of ``at``, equal to the whole block's value there.

    Raises
    ------
    ValueError
        Non-finite values in the block or its halo.

    Examples
    --------
    >>> vol = np.random.default_rng(0).random((20, 20, 20)).astype(np.float32)
    >>> spec = FeatureSpec(sigmas=(1.0,), families=("gaussian",))
    >>> full = compute_features(vol, spec)
    >>> part = block_features(vol, (slice(0, 8), slice(5, 20), slice(3, 9)), spec)
    >>> bool(np.allclose(part, full[:, 0:8, 5:20, 3:9], atol=1e-6))
    True
    """
    if at is not None:  # gathered by flat offsets: an index beyond an axis must not wrap
        for i, n in zip(at, (s.stop - s.start for s in core), strict=True):
            i = np.asarray(i)
            if i.size and (i.min() < 0 or i.max() >= n):
                raise IndexError(f"voxel indices {i.min()}..{i.max()} outside the block's {n}")
    halo = spec.halo
    padded = _read_padded(data, core, halo)
    if not np.isfinite(padded).all():
        raise ValueError(
            f"volume contains NaN/inf values near block {tuple((s.start, s.stop) for s in core)}"
        )
    return _block_features(padded, halo, spec, at)


def compute_features(
    data,
    spec: FeatureSpec | None = None,
    *,
    block: tuple[int, int, int] = (64, 64, 64),
    out=None,
):
    """Compute multi-scale voxel features block by block.

    Parameters
    ----------
    data : array-like, shape (z, y, x)
        Real-valued volume (numpy or zarr array), e.g. LAC in µm⁻¹. Not normalised (see the
        module docstring). Must be finite.
    spec : FeatureSpec, optional
        Which features; default ``FeatureSpec()``.
    block : tuple of 3 int
        Core block size in voxels. Memory use is about ``(F + 20) × (block + 2·halo)³ × 4``
        bytes, independent of the volume size.
    out : array-like, shape (F, z, y, x), optional
        Destination (numpy or zarr array, float32 recommended). Allocated if omitted.

    Returns
    -------
    out : ndarray or zarr array, shape (F, z, y, x), float32
        Channel ``i`` is feature ``spec.names()[i]``; same units as ``data`` times voxel⁻ᵏ
        for derivatives of order ``k``.

    Raises
    ------
    ValueError
        ``data`` not 3D, ``out`` of the wrong shape, or non-finite values in ``data``.
    """
    spec = FeatureSpec() if spec is None else spec
    shape = tuple(int(n) for n in data.shape)
    if len(shape) != 3:
        raise ValueError(f"features need a 3D (z, y, x) volume, got shape {shape}")
    want = (spec.n_features, *shape)
    if out is None:
        out = np.empty(want, dtype=np.float32)
    elif tuple(out.shape) != want:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {want}")
    blocks = iter_blocks(shape, block)
    for core in progress(blocks, len(blocks), "features"):
        out[(slice(None), *core)] = block_features(data, core, spec)
    return out


class BlockFeatures:
    """A volume's features as a read-only ``(F, z, y, x)`` array, computed per block read.

    Stands in for a feature store (:func:`write_features`) where only some blocks are read,
    e.g. training on a few annotated slices (:func:`sxtflow.segment.training_samples` reads
    only blocks holding annotated voxels): ``arr[:, z0:z1, y0:y1, x0:x1]`` computes
    :func:`block_features` of that box, which equals the same box of the whole-volume
    features exactly, so nothing downstream can tell the two apart.

    Parameters
    ----------
    data : array-like, shape (z, y, x)
        The volume (e.g. LAC in µm⁻¹).
    spec : FeatureSpec
    chunks : tuple of 3 int
        Spatial block that readers iterate with (``chunks`` is ``(F, *chunks)``).
    cache : dict, optional
        Keeps computed blocks (key: the block's bounds) for the next read, e.g. across
        repeated trainings on the same tomogram; the caller bounds its size.

    Examples
    --------
    >>> vol = np.random.default_rng(0).random((12, 12, 12)).astype(np.float32)
    >>> spec = FeatureSpec(sigmas=(1.0,), families=("gaussian",))
    >>> lazy = BlockFeatures(vol, spec, chunks=(4, 12, 12))
    >>> lazy.shape, lazy.chunks
    ((2, 12, 12, 12), (2, 4, 12, 12))
    >>> bool(np.array_equal(lazy[:, 2:5], compute_features(vol, spec)[:, 2:5]))
    True
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, data, spec: FeatureSpec, chunks=(64, 64, 64), cache: dict | None = None):
        if len(data.shape) != 3:
            raise ValueError(f"features need a 3D (z, y, x) volume, got shape {data.shape}")
        self.data = data
        self.spec = spec
        self.shape = (spec.n_features, *(int(n) for n in data.shape))
        self.chunks = (spec.n_features, *_spatial_chunks(data.shape, chunks))
        self.attrs = {"feature_spec": spec.to_dict(), "feature_names": spec.names()}
        self.cache = cache

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (4 - len(key))
        if len(key) != 4 or key[0] != slice(None) or not all(isinstance(k, slice) for k in key):
            raise IndexError("BlockFeatures supports arr[:, z0:z1, y0:y1, x0:x1] only")
        core = []
        for k, n in zip(key[1:], self.shape[1:], strict=True):
            start, stop, step = k.indices(n)
            if step != 1:
                raise IndexError("BlockFeatures supports unit steps only")
            core.append(slice(start, max(start, stop)))
        key = tuple((c.start, c.stop) for c in core)
        if self.cache is not None and key in self.cache:
            return self.cache[key]
        out = block_features(self.data, tuple(core), self.spec)
        if self.cache is not None:
            self.cache[key] = out
        return out


def _spatial_chunks(shape, block) -> tuple[int, int, int]:
    """The block clipped to the volume (a block of 0 voxels would never finish)."""
    if len(block) != 3 or any(int(b) < 1 for b in block):
        raise ValueError(f"block sizes must be three integers ≥ 1, got {tuple(block)}")
    return tuple(max(1, min(int(b), int(n))) for b, n in zip(block, shape, strict=True))
