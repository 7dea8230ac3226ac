"""The boundary step of refinement: each object's surface moved to where the blurred LAC
puts it (:func:`snap_boundaries`), with the blur estimated from the tomogram
(:func:`estimate_blur`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import ndimage as ndi

from ._distance import distance_um

_STRUCT = ndi.generate_binary_structure(3, 3)  # 26-connectivity, as in sxtflow.quantify


_TILE = (128, 256, 256)


def mask_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of the True voxels of a 3D mask (None when empty), from its projections
    (no full-volume temporary)."""
    mask = np.asarray(mask, dtype=bool)
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        if not hit.size:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _grow(box, by, shape) -> tuple[slice, ...]:
    """``box`` (slices) grown by ``by`` voxels (an int or one per axis), clipped to
    ``shape``."""
    by = np.broadcast_to(np.asarray(by, dtype=int), (len(shape),))
    return tuple(
        slice(max(b.start - int(g), 0), min(b.stop + int(g), n))
        for b, g, n in zip(box, by, shape, strict=True)
    )


def _object_boxes(labels, value, spacing, margin_um, tile=None):
    """Each 26-connected piece of ``value`` (large ones tile by tile).

    Yields ``(piece number, box, core, mask)``: ``box`` the slices of the piece's
    bounding box (or of one tile of it) grown by ``margin_um``, ``core`` the slices
    within ``box`` where results count (all of it for a piece processed whole), ``mask``
    the piece in ``box``.
    """
    tile = _TILE if tile is None else tile
    cls = mask_box(labels == value)
    if cls is None:
        return
    # labelled within the class's bounding box: int32 labels of that box, not the volume's
    pieces, _ = ndi.label(labels[cls] == value, _STRUCT)
    off = [b.start for b in cls]
    grow = np.ceil(margin_um / np.asarray(spacing, dtype=float)).astype(int)
    for idx, sl in enumerate(ndi.find_objects(pieces), start=1):
        sl = tuple(slice(a.start + o, a.stop + o) for a, o in zip(sl, off, strict=True))
        whole = all(a.stop - a.start + 2 * g <= t for a, g, t in zip(sl, grow, tile, strict=True))
        # tiles of equal length along each axis of the grown box, none longer than ``tile``
        span = [
            (max(a.start - g, 0), min(a.stop + g, n_))
            for a, g, n_ in zip(sl, grow, labels.shape, strict=True)
        ]
        cuts = [
            np.linspace(lo, hi, 1 + (1 if whole else -(-(hi - lo) // t))).round().astype(int)
            for (lo, hi), t in zip(span, tile, strict=True)
        ]
        for corner in np.ndindex(*(len(c) - 1 for c in cuts)):
            box, core = [], []
            for k, (g, n_) in enumerate(zip(grow, labels.shape, strict=True)):
                lo, hi = int(cuts[k][corner[k]]), int(cuts[k][corner[k] + 1])
                b0, b1 = (lo, hi) if whole else (max(lo - g, 0), min(hi + g, n_))
                box.append(slice(b0, b1))
                core.append(slice(0, b1 - b0) if whole else slice(lo - b0, hi - b0))
            # the box in the class box's coordinates (the margin may reach beyond it,
            # where there is no voxel of the class)
            inner = tuple(
                slice(max(b.start - o, 0), min(b.stop - o, n_))
                for b, o, n_ in zip(box, off, pieces.shape, strict=True)
            )
            mask = np.zeros([b.stop - b.start for b in box], dtype=bool)
            at = tuple(
                slice(i.start + o - b.start, i.stop + o - b.start)
                for i, o, b in zip(inner, off, box, strict=True)
            )
            mask[at] = pieces[inner] == idx
            if mask.any():
                yield idx, tuple(box), tuple(core), mask


def _fit_levels(f, model, region):
    """Least-squares ``f ≈ b + c · model`` over ``region``: (b, c, residual SD)."""
    x = model[region].astype(np.float64)
    y = f[region].astype(np.float64)
    xm, ym = x.mean(), y.mean()
    var = float(((x - xm) ** 2).sum())
    if var <= 0:
        return ym, 0.0, np.inf
    c = float(((x - xm) * (y - ym)).sum() / var)
    b = ym - c * xm
    return b, c, float(np.sqrt(np.mean((y - b - c * x) ** 2)))


def _superlevel(model, n):
    """The level of ``model`` whose superlevel set has ``n`` voxels."""
    flat = model.ravel()
    n = int(np.clip(n, 1, flat.size - 1))
    # the n-th and (n + 1)-th largest values (a partition, not a sort: the same values)
    k = flat.size - n
    two = np.partition(flat, (k - 1, k))
    return 0.5 * float(two[k] + two[k - 1])


def estimate_blur(
    labels,
    lac,
    values,
    spacing_um,
    *,
    sigmas=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    min_voxels=27,
    threads=1,
):
    """The Gaussian blur (σ, voxels) that best explains the tomogram at labelled edges.

    Each object of ``values`` (its mask blurred with σ, scaled by a fitted contrast and
    offset) is compared with the LAC within 3 voxels of its surface; each object's best
    σ (least squared residual, refined between the grid's values by a parabola) is one
    vote and the median of the votes is returned, so that an object whose surroundings
    the model cannot describe (the cell against its dense wall, a nucleolus against the
    envelope) does not decide; pieces of fewer than ``min_voxels`` voxels (an int, or a
    mapping class value → voxels, e.g. each class's debris size: specks, which the size
    rules remove anyway, and which in a noisy tomogram are mostly noise the classifier
    read as the class and outnumber the real objects) do not vote (never fewer than 27).
    Used by :func:`snap_boundaries`. Masks off by more than
    about a voxel read as more blur (a seed 2 voxels inside a ball blurred by σ = 1
    gives 2): estimate it from the classifier's labels, not from a deliberately eroded
    mask. ``threads``: pieces (and the tiles of large ones) fitted at the same time, as
    in :func:`snap_boundaries` (the same σ for any number).

    Returns
    -------
    float
        σ in voxels (within the range of ``sigmas``), or NaN without any object.
    """
    spacing = np.asarray(spacing_um, dtype=float)
    vox = float(spacing.min())
    f = np.asarray(lac, dtype=np.float32)
    sig = np.asarray(sigmas, dtype=float)
    votes = []

    def vote(ssr, n):
        if n == 0:
            return
        votes.append(_vertex(sig, np.sqrt(ssr / n))[0])

    for value in values:
        least = _least_voxels(min_voxels, value)
        margin = 3 * vox + 4 * sig.max() * vox

        def fit(item, _state, least=least):
            """The squared residuals (one per σ, times the voxels fitted) of one piece or
            tile, and the voxels fitted; None for a speck or a sliver."""
            _, sl, core, obj = item
            if np.count_nonzero(obj) < least:
                return None  # a speck (or a tile's sliver of a piece): no surface to fit
            region = _core_near_surface(obj, core, spacing, 3 * vox)
            m = int(region.sum())
            if m < 20:
                return None
            fitted = np.zeros(sig.size)
            for i, sg in enumerate(sig):
                model = ndi.gaussian_filter(obj.astype(np.float32), sg)
                fitted[i] += _fit_levels(f[sl], model, region)[2] ** 2 * m
            return fitted, m

        piece = {"idx": None, "ssr": np.zeros(sig.size), "n": 0}

        def add(item, result, piece=piece):
            if item[0] != piece["idx"]:  # one vote per piece, however many tiles it spans
                vote(piece["ssr"], piece["n"])
                piece.update(idx=item[0], ssr=np.zeros(sig.size), n=0)
            if result is not None:
                piece["ssr"] += result[0]
                piece["n"] += result[1]
            return 0

        _in_waves(
            _object_boxes(labels, value, spacing, margin),
            fit,
            add,
            threads,
            f"blur estimate, class {value}",
        )
        vote(piece["ssr"], piece["n"])
    return float(np.median(votes)) if votes else float("nan")


def _vertex(sig, err):
    """``(σ, i)``: the σ of ``sig`` (ascending) with the least ``err`` and its index, the
    σ refined by the vertex of the parabola through it and its two neighbours (within
    them; not at either end of ``sig``, nor where the parabola opens downwards)."""
    i = int(np.argmin(err))
    best = float(sig[i])
    if 0 < i < sig.size - 1:
        a, b, _ = np.polyfit(sig[i - 1 : i + 2], err[i - 1 : i + 2], 2)
        if a > 0:
            best = float(np.clip(-b / (2 * a), sig[i - 1], sig[i + 1]))
    return best, i


def _least_voxels(min_voxels, value) -> int:
    """The fewest voxels (at least 27) of an object of class ``value`` whose edge is
    fitted: ``min_voxels`` an int or a mapping class value → voxels."""
    return max(27, int(min_voxels.get(value, 27) if hasattr(min_voxels, "get") else min_voxels))


def _near_surface(obj, spacing, reach_um):
    """The voxels within ``reach_um`` of ``obj``'s surface, on both sides (µm between voxel
    centres: an object voxel's distance to the nearest background voxel, and back)."""
    return (distance_um(~obj, spacing) <= reach_um) & (distance_um(obj, spacing) <= reach_um)


def _core_near_surface(obj, core, spacing, reach_um):
    """:func:`_near_surface` within the slices ``core`` of ``obj``'s box (a tile's own part,
    not its margin)."""
    region = np.zeros(obj.shape, dtype=bool)
    region[core] = True
    return region & _near_surface(obj, spacing, reach_um)


def _axis_blurs(f, obj, region, sigmas, sweeps=2):
    """The Gaussian blur per axis (z, y, x; voxels) whose blurred ``obj`` fits ``f`` at
    the ``region`` voxels best (``f ≈ b + c · model``, least squares), and its residual
    SD: from the best isotropic σ of ``sigmas``, each axis in turn over ``sigmas`` with
    the others held (``sweeps`` times), the best refined by the vertex of the parabola
    through it and its two neighbours. The passes along the held axes are computed once
    per axis and sweep (scipy's Gaussian is separable: the same values)."""
    sig = np.asarray(sigmas, dtype=float)
    mask = obj.astype(np.float32)

    def err_of(model):
        return _fit_levels(f, model, region)[2]

    iso = np.array([err_of(ndi.gaussian_filter(mask, s_)) for s_ in sig])
    cur = [_vertex(sig, iso)[0]] * obj.ndim
    for _ in range(sweeps):
        for axis in range(obj.ndim):
            held = mask
            for other in range(obj.ndim):
                if other != axis:
                    held = ndi.gaussian_filter1d(held, cur[other], axis=other)
            errs = np.array([err_of(ndi.gaussian_filter1d(held, s_, axis=axis)) for s_ in sig])
            cur[axis] = _vertex(sig, errs)[0]
    return tuple(cur), err_of(ndi.gaussian_filter(mask, cur))


def estimate_blur_axes(
    labels,
    lac,
    values,
    spacing_um,
    *,
    sigmas=(0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
    min_voxels=27,
):
    """The blur σ (voxels) along each axis (z, y, x) that best explains the tomogram at
    labelled edges: :func:`estimate_blur` with one width per axis.

    A reconstruction's response need not be isotropic: from a limited tilt range (the
    missing wedge) it is wider along the beam and narrower across it, whatever the
    metadata say. Each object of ``values`` of at least ``min_voxels`` voxels (an int, or
    a mapping class value → voxels) fits its own widths (its mask blurred per axis,
    scaled by a fitted contrast and offset, against the LAC within 3 voxels of its
    surface; :func:`_axis_blurs`) and votes; the median per axis wins. A full-rotation
    tomogram gives the same width on every axis within the votes' spread.

    Returns
    -------
    tuple of 3 float
        σ (voxels) along z, y, x, each within the range of ``sigmas``; NaNs without any
        object.
    """
    spacing = np.asarray(spacing_um, dtype=float)
    vox = float(spacing.min())
    f = np.asarray(lac, dtype=np.float32)
    sig = np.asarray(sigmas, dtype=float)
    votes = []
    for value in values:
        least = _least_voxels(min_voxels, value)
        margin = 3 * vox + 4 * sig.max() * vox
        for _, sl, core, obj in _object_boxes(labels, value, spacing, margin):
            if np.count_nonzero(obj) < least:
                continue
            region = _core_near_surface(obj, core, spacing, 3 * vox)
            if region.sum() < 20:
                continue
            votes.append(_axis_blurs(f[sl], obj, region, sig)[0])
    if not votes:
        return (float("nan"),) * 3
    return tuple(float(v) for v in np.median(np.asarray(votes), axis=0))


def _kernel_box(mask, sigma_vox):
    """The bounding box of ``mask`` grown by the radius of scipy's Gaussian of ``sigma_vox``
    (truncate = 4), clipped to the array.

    A Gaussian of an array that is 0 outside ``mask`` equals, within this box, the
    Gaussian of the box alone (its edges reflect zeros, as the whole array's would, or are
    the array's own edges), and is exactly 0 outside it.
    """
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=float), (mask.ndim,))
    found = mask_box(mask)
    if found is None:
        return tuple(slice(0, 0) for _ in mask.shape)
    return _grow(found, [int(4.0 * g + 0.5) for g in sig], mask.shape)


def _gaussian_at(a, sigma_vox, keep) -> np.ndarray:
    """``ndi.gaussian_filter(a, sigma_vox)[keep]``, the same values, computed for less.

    scipy filters axis by axis (z, y, x), each pass a float32 array, and each output line
    depends only on its own input line; so once an axis is filtered, the array is cropped
    to ``keep`` along it and the later passes filter only what is kept (every voxel of
    ``keep`` gets exactly the sums it would get on the whole array).
    """
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=float), (a.ndim,))
    out = a
    for axis, s in enumerate(sig):
        if s > 1e-15:  # gaussian_filter skips these axes too
            out = ndi.gaussian_filter1d(out, float(s), axis=axis)
        out = out[(slice(None),) * axis + (keep[axis],)]
    return out


def _pool_at(points, above, layer, shape, sigma_vox) -> np.ndarray:
    """:func:`_pool_in_layers` at the voxels ``points`` (a tuple of coordinate arrays,
    as ``np.nonzero`` returns, of the region's voxels), ``above`` and ``layer`` given
    there: one bool per point.

    Each layer's Gaussian is computed in the layer's :func:`_kernel_box` (built from
    its points, not from masks of the whole array) and only where the layer's voxels are
    (:func:`_gaussian_at`): the same sums as the whole array's Gaussian.
    """
    sig = np.broadcast_to(np.asarray(sigma_vox, dtype=float), (len(shape),))
    radius = [int(4.0 * g + 0.5) for g in sig]
    out = np.zeros(layer.shape, dtype=bool)
    if not layer.size:
        return out
    vote = np.where(above, np.float32(0.5), np.float32(-0.5))  # each voxel's vote
    order = np.argsort(layer, kind="stable")
    ks, starts = np.unique(layer[order], return_index=True)
    ends = [*starts[1:], layer.size]
    for start, end in zip(starts, ends, strict=True):
        sel = order[start:end]
        pts = [p[sel] for p in points]
        lo = [int(p.min()) for p in pts]
        hi = [int(p.max()) + 1 for p in pts]
        box = _grow(tuple(map(slice, lo, hi)), radius, shape)
        field = np.zeros([b.stop - b.start for b in box], dtype=np.float32)
        field[tuple(p - b.start for p, b in zip(pts, box, strict=True))] = vote[sel]
        keep = tuple(slice(l_ - b.start, h - b.start) for l_, h, b in zip(lo, hi, box, strict=True))
        g = _gaussian_at(field, sig, keep)
        out[sel] = g[tuple(p - l_ for p, l_ in zip(pts, lo, strict=True))] > 0
    return out


def _pool_in_layers(above, layer, region, sigma_vox):
    """Whether most of the ``region`` voxels of the same layer nearby are ``above``.

    ``layer`` is an integer layer index per voxel (rounded signed distance to the
    surface); the fraction of ``above`` is a Gaussian-weighted (``sigma_vox`` per axis)
    average over the voxels of the voxel's own layer, i.e. a vote along the surface, never
    across it, and a voxel is True where it exceeds one half. The fraction is ``G ∗ (above
    ∧ lay) / G ∗ lay``, so "more than one half" is ``G ∗ (above ∧ lay − lay / 2) > 0``: one
    Gaussian per layer instead of two (the same decisions but for sums within float
    rounding of an exact tie), computed in the layer's :func:`_kernel_box` only
    (:func:`_pool_at`).
    """
    points = np.nonzero(region)
    out = np.zeros(above.shape, dtype=bool)
    out[points] = _pool_at(points, above[points], layer[points], above.shape, sigma_vox)
    return out


def snap_boundaries(
    labels: np.ndarray,
    lac: np.ndarray,
    value: int,
    spacing_um,
    *,
    band_um: float = 0.08,
    blur_vox: float | None = None,
    min_contrast: float = 6.0,
    max_rounds: int = 20,
    smooth_vox: float = 0.8,
    pool_vox: float = 2.0,
    offset_vox: float = 0.1,
    max_pool_vox: float = 3.0,
    settle: float = 1e-4,
    threads: int = 1,
    then=(),
    memo: dict | None = None,
) -> int:
    """Move each object's surface to where the blurred LAC says it is (in place).

    A classifier trained on strokes painted inside objects places boundaries where it
    happens to, usually inside (the blurred rim looks like neither class). Physically an
    object's surface is where the LAC steps from the object's level to its
    surroundings', blurred by the optics. Per object (26-connected piece of ``value``),
    analysis by synthesis, repeated until the surface stops moving (at most
    ``max_rounds``), never further than ``band_um`` from where the classifier put it:

    1. the current mask blurred with the point-spread function (a Gaussian of
       ``blur_vox``, estimated from the tomogram by :func:`estimate_blur` when None) is
       fitted to the LAC near the surface by least squares: ``LAC ≈ b + c · model``
       gives the surroundings' level ``b`` and the object's contrast ``c`` (thick
       objects: from two layers on both sides just beyond the blur's reach of the
       current surface, 2 σ, or beyond the band if it is narrower; not beyond a wide
       band, where neighbouring objects' blur tails and gradients within the
       compartments already shift the levels; objects thinner than
       the band: from all voxels near the surface, so that the model accounts for the
       dimming of their centre by the blur);
    2. the threshold is ``b + c · q``, ``q`` the level at which the blurred model has the
       mask's own volume (below one half for convex objects: a blurred ball's half level
       lies inside its surface by σ²/R); for thick objects ``b`` and ``c`` are read
       where each part of the surface is (``_local_levels``: the surroundings need not
       be alike all round, e.g. a limited tilt range's smear along the beam and dark
       side lobes across it); within the band, voxels labelled ``value`` or
       the surrounding label are the object's where the LAC is beyond it, connected to
       the object;
    2b. one voxel's test places the surface only to the noise over the edge's slope
       (±0.25 voxel at the suite's central case), so a thick object's surface, settled
       voxel by voxel, jitters by that much (a ball of 6 voxels started from its true
       mask: Dice 0.95): once it has settled, the rounds go on with the surface offset
       pooled along the surface, the least-squares shift of the blurred model onto the
       LAC averaged over just as much of the surface as brings its noise to
       ``offset_vox`` voxels (none where one voxel is already that precise, as in a
       noise-free tomogram; see ``_Snap._offset``); a voxel is the object's where the
       shifted model exceeds ``q``. Thin objects (every voxel within the band) stay
       voxel by voxel: a pooled surface does not follow a tube beyond its cap;
    3. an object whose visible contrast (``c`` times the blurred model's peak: what
       single voxels see; a speck of noise the classifier read as the class fits a large
       ``c`` on a tiny model, and grew into a blob of noise) is below ``min_contrast``
       residual SDs cannot be placed voxel by voxel; a thick one (a nucleus
       0.05 µm⁻¹ denser than a textured cytoplasm, with noise of 0.035 µm⁻¹: single
       voxels cannot be decided) is placed by a vote along its surface instead: the
       levels are local (Gaussian-weighted means of two layers on either side, within
       1.5 ``pool_vox``, so that a dense nucleolus against the envelope raises the
       threshold only where it is), each band voxel's test is averaged over the voxels of
       its own layer (same rounded distance to the surface) within ``pool_vox``, and the
       majority decides; used when the contrast reaches ``min_contrast`` SDs of that
       average (the residual SD over √(4π ``pool_vox``²)). The vote moves whole layers
       and stops up to ~0.5 voxel short of the edge on the side it came from, so its
       settled surface then takes one step of the pooled offset of step 2b, fitted
       together with the local contrast (an object's contrast varies along its surface,
       e.g. a nucleus's heterochromatin rim; see ``_Snap._offset_and_contrast``), with
       the blur of the object's own edge (``_Snap._edge_model``: the offset is biased by
       a blur that is not the edge's, and the tomogram's estimate is a median over all
       objects); where no blur in the physical range describes the edge, the vote's
       surface stays;
    4. thin objects below ``min_contrast`` and thick ones whose contrast is too low for
       the vote too are left alone.

    Parameters
    ----------
    labels : ndarray of uint8, shape (z, y, x)
        Class values; changed in place.
    lac : ndarray of float, shape (z, y, x)
        The tomogram (LAC, µm⁻¹) the labels segment.
    value : int
        The class to snap.
    spacing_um : tuple of 3 float
        Voxel size (z, y, x) in µm.
    band_um : float
        How far (µm) the surface may move from where the classifier put it; at least one
        voxel.
    blur_vox : float, optional
        σ (voxels) of the point-spread function; estimated when None.
    min_contrast : float
        Minimum fitted contrast in residual SDs (of single voxels, or of the vote).
    max_rounds : int
        Fit–threshold rounds per object at most (the model follows the new mask).
    smooth_vox : float
        σ (voxels) of a Gaussian applied to the LAC first, so that noise does not decide
        single voxels (the model is blurred by the combined σ).
    pool_vox : float
        σ (voxels) of the vote along the surface of low-contrast objects (0: never vote).
    offset_vox : float
        Noise (SD, voxels) of the pooled surface offset of step 2b; 0: voxel by voxel
        only.
    max_pool_vox : float
        The widest pooling (Gaussian σ along the surface, voxels) of step 2b.
    settle : float
        The rounds stop once at most this fraction of the object's voxels moved in one
        round, or when the mask returns to a state it had (a few voxels cycling).
    threads : int
        Objects snapped at the same time. Objects (and the tiles of large ones, e.g. a
        nucleus at 25 nm) are taken 8 at a time, each starting from the labels as the
        previous groups left them, so the result is the same for any number of threads.
        On Linux the groups run in that many worker processes, forked once per call
        (scipy.ndimage's filters and labelling and ``edt`` hold the GIL, so threads
        overlap only numpy's own operations; each object's box of the labels is sent to
        them); elsewhere on threads.
    then : sequence of (int, float)
        Classes (value, ``band_um``) the caller snaps next, with this call's
        ``blur_vox`` and other parameters: in worker processes, a worker that has
        finished its share of this class's last group snaps their objects (boxes below
        :data:`_AHEAD_VOXELS`) on its own copy of the labels as they are now, until this
        class is done; the results go into ``memo``.
    memo : dict, optional
        Results of objects snapped ahead (``then``), each with the exact inputs it was
        computed from (the object, its box of the labels, the class and parameters): an
        object whose inputs are the same takes that result instead of being snapped
        again (the same result, the work done while a core was idle); any other is
        snapped. Only for the same ``lac``.

    Returns
    -------
    int
        Number of voxels relabelled.

    Examples
    --------
    >>> z, y, x = np.mgrid[:32, :32, :32] - 15.5
    >>> ball = np.sqrt(z**2 + y**2 + x**2) <= 8
    >>> from scipy import ndimage as ndi
    >>> lac = ndi.gaussian_filter(np.where(ball, 0.5, 0.2), 1.0)
    >>> lab = np.where(np.sqrt(z**2 + y**2 + x**2) <= 6, 9, 2).astype(np.uint8)  # too small
    >>> _ = snap_boundaries(lab, lac, 9, (0.04,) * 3, band_um=0.12, blur_vox=1.0)
    >>> abs(int((lab == 9).sum()) / int(ball.sum()) - 1) < 0.02
    True
    """
    f_all = np.asarray(lac, dtype=np.float32)
    if blur_vox is None:
        blur_vox = estimate_blur(labels, f_all, [value], spacing_um)
    if not np.isfinite(blur_vox):
        return 0
    options = {
        "min_contrast": min_contrast,
        "max_rounds": max_rounds,
        "smooth_vox": smooth_vox,
        "pool_vox": pool_vox,
        "offset_vox": offset_vox,
        "max_pool_vox": max_pool_vox,
        "settle": settle,
    }
    margin, work = _snapper(f_all, value, spacing_um, band_um, blur_vox, memo, **options)
    ahead = None
    if then:
        ahead = (
            lambda stop: _ahead(labels, f_all, spacing_um, blur_vox, then, stop, **options),
            (memo if memo is not None else {}).update,
        )
    return _in_waves(
        _object_boxes(labels, value, np.asarray(spacing_um, dtype=float), margin),
        work,
        lambda item, obj: _relabel(labels[item[1]], item[3], obj, item[2], value),
        threads,
        f"boundary step, class {value}",
        # the box as the previous groups left it
        state=lambda item, copy: labels[item[1]].copy() if copy else labels[item[1]],
        extra=ahead,
    )


def _snapper(f_all, value, spacing_um, band_um, blur_vox, memo=None, **options):
    """The margin (µm) of :func:`snap_boundaries`'s boxes for one class and its
    ``work(item, sub)``: an object's new mask from its box of the labels ``sub`` (or the
    result in ``memo`` computed from the same inputs)."""
    o = {**_snap_defaults(), **options}
    spacing = np.asarray(spacing_um, dtype=float)
    vox = float(spacing.min())
    w = max(float(band_um), vox)  # µm the surface may move
    smooth = float(o["smooth_vox"])
    sigma = float(np.hypot(blur_vox, smooth))
    offset = (float(o["offset_vox"]), smooth, float(o["max_pool_vox"]))
    pool, settle, least = float(o["pool_vox"]), float(o["settle"]), float(o["min_contrast"])
    snap = _Snap(value, spacing, w, sigma, least, pool, settle, offset)
    margin = 2 * w + 2 * vox + 4 * sigma * vox
    rounds = int(o["max_rounds"])
    # everything a result depends on besides the object, its box and the tomogram
    params = (int(value), w, sigma, least, pool, settle, offset, rounds, tuple(spacing))

    def work(item, sub):
        _, sl, _, obj = item
        seen = None if memo is None else memo.get(_memo_key(params, sl))
        if seen is not None and _same_inputs(seen, obj, sub):
            return np.unpackbits(seen[2], count=obj.size).reshape(obj.shape).view(bool)
        return snap.rounds(sub, _smoothed(f_all, sl, smooth), obj, rounds)

    work.params = params
    return margin, work


def _snap_defaults() -> dict:
    """:func:`snap_boundaries`' defaults of the options :func:`_snapper` reads (from its
    signature: one place for them)."""
    import inspect

    keep = ("min_contrast", "max_rounds", "smooth_vox", "pool_vox", "offset_vox")
    keep += ("max_pool_vox", "settle")
    params = inspect.signature(snap_boundaries).parameters
    return {k: params[k].default for k in keep}


def _memo_key(params, box):
    return params, tuple((b.start, b.stop) for b in box)


def _same_inputs(seen, obj, sub) -> bool:
    """Whether a result in a memo was computed from this object and box of labels."""
    return np.array_equal(seen[1], sub) and np.array_equal(seen[0], np.packbits(obj))


#: Objects snapped ahead (:func:`_ahead`) have boxes of fewer voxels than this: each takes
#: at most about a second, so the worker stops soon after it is told to.
_AHEAD_VOXELS = 1 << 20


def _ahead(labels, f_all, spacing_um, blur_vox, then, stop, **options) -> dict:
    """The objects of the classes ``then`` (value, band µm) snapped as
    :func:`snap_boundaries` would, in groups, on the labels as they are, each result with
    its inputs (the memo of :func:`snap_boundaries`); until ``stop`` is set.

    Runs in a forked worker, on its own copy-on-write view of ``labels``: the only work
    that reads the labels the workers were forked with is the first group's, and this
    is queued behind the last group's items (a worker that takes it has done its own).
    """
    import itertools

    found = {}
    for value, band in then:
        margin, work = _snapper(f_all, int(value), spacing_um, float(band), blur_vox, **options)
        items = _object_boxes(labels, int(value), np.asarray(spacing_um, dtype=float), margin)
        while wave := list(itertools.islice(items, _WAVE)):
            todo = [(item, labels[item[1]].copy()) for item in wave]
            for item, sub in todo:
                if stop.is_set():
                    return found
                _, sl, core, obj = item
                if obj.size >= _AHEAD_VOXELS:
                    continue  # too long to be told to stop; later ones may differ (snapped)
                new = work(item, sub)
                found[_memo_key(work.params, sl)] = (np.packbits(obj), sub, np.packbits(new))
                _relabel(labels[sl], obj, new, core, int(value))
    return found


#: Objects (or tiles of large ones) snapped from the same labels before any of them is
#: written back: a fixed number, so results do not depend on the number of threads.
_WAVE = 8


def _can_fork() -> bool:
    """Whether worker processes can be forked (Linux: they inherit the tomogram without a
    copy). Elsewhere the groups run on threads (the same results)."""
    import multiprocessing
    import sys

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


#: What the forked workers of :func:`_in_waves` run, ``(work, extra, stop, state,
#: first)``: set just before they are forked (they inherit it), never pickled.
_FORKED = None


def _forked_item(args):
    """``work(item, state)``; for ``(i, None)`` the first group's item ``i`` and its state
    from the memory the worker was forked with (nothing written since: none sent)."""
    work, _, _, state, first = _FORKED
    item, got = args
    if got is None and isinstance(item, int):
        item = first[item]
        got = None if state is None else state(item, False)
    return work(item, got)


def _forked_extra():
    return _FORKED[1](_FORKED[2])


def _fork_pool(work, workers: int, extra=None, state=None, first=()):
    """``workers`` processes forked now (all of them: a fork-context pool starts every
    worker at the first submission), each inheriting ``work``, ``extra``, ``state``, the
    first group's items ``first`` and the parent's memory as it is at this moment; and the
    event that tells ``extra`` to stop."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _FORKED
    ctx = multiprocessing.get_context("fork")
    stop = ctx.Event()
    _FORKED = (work, extra, stop, state, first)
    pool = ProcessPoolExecutor(int(workers), mp_context=ctx)
    pool.submit(int).result()  # forks the workers (they hold ``work``) before returning
    return pool, stop


def _in_waves(items, work, write, threads: int, what: str, state=None, extra=None) -> int:
    """``write(item, work(item, state(item)))`` for every item, ``work`` on ``threads``
    processes (or threads).

    Items are taken ``_WAVE`` at a time; ``state(item, copy)`` (e.g. the item's box of
    the labels, a copy if ``copy``; None without ``state``) is taken for every item of a
    wave before any of the wave's results is written, so within a wave every ``work``
    sees the labels as the previous waves left them (none sees another's result); the
    first wave's workers take it and the items from the memory they were forked with
    (nothing sent); the results are written in order, each as soon as it and those
    before it are done (a large item's write overlaps the work of the items after it). With ``threads`` > 1, where :func:`_can_fork`, the
    work runs in ``threads`` worker processes forked once (scipy.ndimage and ``edt``
    hold the GIL, so threads overlap only numpy's own operations): ``work`` must read
    nothing that ``write`` changes except through ``state`` (the workers keep the
    parent's memory as it was when they were forked; items and states are sent to them,
    results sent back); elsewhere on threads. ``extra``: ``(run, done)``, work that can
    fill a worker left idle by the last group (only with worker processes):
    ``run(stop)`` runs in the first worker that is free after the last group's items
    and must return soon after the event ``stop`` is set (when every item is written);
    ``done`` receives what it returns. Memory: one wave's states and results and
    ``threads`` items in progress. Returns the sum of what ``write`` returns; logs
    progress every ~10 s.
    """
    import itertools
    import time
    from concurrent.futures import ThreadPoolExecutor

    from ..progress import log

    global _FORKED
    start = last = time.perf_counter()
    done = total = 0
    items = iter(items)
    threads = int(threads)
    forks = threads > 1 and _can_fork()
    pool = stop = side = None
    try:
        # the next group is known before this one runs (its items, not its states)
        nxt = list(itertools.islice(items, _WAVE))
        while nxt:
            wave, nxt = nxt, list(itertools.islice(items, _WAVE))
            if pool is None and forks:  # the first group: its workers take items and states
                run = None if extra is None else extra[0]
                pool, stop = _fork_pool(work, threads, run, state, wave)
                args = [(i, None) for i in range(len(wave))]
            else:
                if pool is None and threads > 1:
                    pool = ThreadPoolExecutor(threads)
                args = [(item, None if state is None else state(item, True)) for item in wave]
            if forks:
                results = pool.map(_forked_item, args)
                if extra is not None and not nxt:
                    side = pool.submit(_forked_extra)  # queued behind the last group
            elif pool is not None:
                results = pool.map(lambda a: work(*a), args)
            else:
                results = (work(*a) for a in args)
            for item, result in zip(wave, results, strict=True):
                total += write(item, result)
            done += len(wave)
            if time.perf_counter() - last > 10:
                last = time.perf_counter()
                log.info("%s: %d objects or tiles done, %.1f s", what, done, last - start)
        if side is not None:
            stop.set()
            extra[1](side.result())
    finally:
        if stop is not None:
            stop.set()
        if pool is not None:
            pool.shutdown()
        if forks:
            _FORKED = None
    if done:
        log.info("%s: %d objects or tiles, %.1f s", what, done, time.perf_counter() - start)
    return total


def _smoothed(f, box, sigma_vox):
    """``f[box]`` smoothed by a Gaussian of ``sigma_vox`` voxels, equal to the box of the
    whole smoothed volume (the box is grown by the filter's radius, then cropped): no
    smoothed copy of the whole tomogram."""
    if not sigma_vox > 0:
        return f[box]
    grown = _grow(box, int(4.0 * float(sigma_vox) + 0.5) + 1, f.shape)  # scipy's truncate = 4
    out = ndi.gaussian_filter(f[grown], float(sigma_vox))
    return out[
        tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, grown, strict=True))
    ]


def _digest(mask: np.ndarray) -> bytes:
    """A short fingerprint of a boolean mask (to recognise a state seen before)."""
    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest()


#: The blurs (σ, voxels, before the smoothing) a voted object's edge is fitted over
#: (``_Snap._edge_model``): :func:`estimate_blur`'s range widened by a step on either side,
#: so that a best fit at an end means no width in the physical range (none sharper than
#: the smoothing alone).
_EDGE_BLURS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)


def _coarse_gaussian(a, sigma_vox, keep) -> np.ndarray:
    """``ndi.gaussian_filter(a, sigma_vox)[keep]`` for a wide Gaussian, on a grid of
    2 × 2 × 2 blocks: the blocks' sums filtered with ``sigma_vox / 2`` (a 16th of the
    work), each voxel taking its block's value (half a voxel off either way, no net shift;
    for local means over a σ of several voxels)."""
    pad = [(0, n % 2) for n in a.shape]
    a = np.pad(a, pad) if any(p for _, p in pad) else a
    blocks = a[0::2] + a[1::2]  # pairs along each axis in turn (each pass halves it)
    blocks = blocks[:, 0::2] + blocks[:, 1::2]
    blocks = (blocks[:, :, 0::2] + blocks[:, :, 1::2]) * np.float32(0.125)
    g = ndi.gaussian_filter(blocks, np.asarray(sigma_vox, dtype=float) / 2)
    idx = np.ix_(*[np.arange(k.start, k.stop) // 2 for k in keep])
    return g[idx]


def _local_levels(f, model, inner, outer, b, c, sigma_vox, where):
    """The local levels of the fit ``f ≈ b + c · model``, ``(b_loc, c_loc)`` (arrays of
    ``f``'s shape, computed within the box of ``where``): the line through the
    Gaussian-weighted (``sigma_vox`` per axis) means of ``f`` and of the model over the
    ``inner`` and over the ``outer`` layer (:func:`_coarse_gaussian`); the global ``b``,
    ``c`` elsewhere, where a layer has (almost) no weight, or where the local contrast is
    under a quarter of ``c``."""
    b_loc = np.full(f.shape, b, dtype=np.float32)
    c_loc = np.full(f.shape, c, dtype=np.float32)
    box = _kernel_box(inner | outer, sigma_vox)
    at = mask_box(where[box])
    if at is None:
        return b_loc, c_loc
    fb, mb = f[box], model[box]
    out = []
    for layer in (inner[box], outer[box]):
        den = np.maximum(_coarse_gaussian(layer.astype(np.float32), sigma_vox, at), 1e-12)
        fl = _coarse_gaussian(np.where(layer, fb, 0).astype(np.float32), sigma_vox, at) / den
        ml = _coarse_gaussian(np.where(layer, mb, 0).astype(np.float32), sigma_vox, at) / den
        out.append((fl, ml, den > 1e-3))
    (fa, ma, ok_a), (fo, mo, ok_o) = out
    dm = ma - mo
    ok = ok_a & ok_o & (dm > 0.5)
    cl = (fa - fo) / np.where(ok, dm, 1)
    ok &= cl * np.sign(c) > 0.25 * abs(c)
    keep = tuple(
        slice(k.start + b_.start, k.stop + b_.start) for k, b_ in zip(at, box, strict=True)
    )
    c_loc[keep] = np.where(ok, cl, c)
    b_loc[keep] = np.where(ok, fo - cl * mo, b)
    return b_loc, c_loc


class _Snap:
    """The fit-threshold rounds of :func:`snap_boundaries` for one class (see there)."""

    def __init__(self, value, spacing, w, sigma, min_contrast, pool_vox, settle, offset):
        self.value, self.spacing, self.w, self.sigma = value, spacing, w, sigma
        self.min_contrast, self.pool_vox, self.settle = min_contrast, pool_vox, settle
        self.offset_vox, self.smooth_vox, self.max_pool = offset
        self.vox = float(spacing.min())

    def rounds(self, sub, f, obj, max_rounds: int) -> np.ndarray:
        """The object's new mask, after at most ``max_rounds`` rounds."""
        spacing, w, vox, value = self.spacing, self.w, self.vox, self.value
        first = obj
        # the surface stays within ``w`` of where the classifier put it, both ways
        zone = distance_um(~first, spacing) <= w
        core = distance_um(first, spacing) > w
        vote = None  # decided in the first round: single voxels, or a vote along the surface
        seen = {_digest(obj)}
        # voxels without data (label 0, e.g. vacuum outside a reconstruction's field of
        # view) and those their blur reaches fit nothing
        data = sub != 0
        if not data.all():
            data = distance_um(data, spacing) > 3 * self.sigma * vox
        pooled, can_pool, left = False, False, max_rounds
        while left > 0:
            left -= 1
            d_out = distance_um(~obj, spacing)
            d_in = distance_um(obj, spacing)
            around = (d_out > 0) & (d_out <= 2 * vox) & (sub != value) & (sub != 0)
            if not around.any():
                break
            s = int(np.bincount(sub[around]).argmax())
            # the blurred mask, computed in the mask's kernel box (0 beyond it: the same)
            model = np.zeros(obj.shape, dtype=np.float32)
            kb = _kernel_box(obj, self.sigma)
            model[kb] = ndi.gaussian_filter(obj[kb].astype(np.float32), self.sigma)
            thick = float(d_in.max()) > w + 2 * vox
            inner = outer = None
            if thick:
                # two layers on either side just beyond the blur's reach of the current
                # surface (2 σ, or the band if narrower): the model hardly depends on the
                # surface there. Not beyond a wide band, where neighbouring objects' blur
                # tails and gradients within the compartments (a nucleolus inside)
                # already shift the levels; the rounds let the surface walk the band
                g = min(w, max(vox, 2.0 * self.sigma * vox))
                inner = obj & (d_in > g) & (d_in <= g + 2 * vox) & data
                outer = (d_out > g) & (d_out <= g + 2 * vox) & (sub == s) & data
                region = inner | outer
            else:  # every voxel is near the surface: all of them and two voxels beyond
                region = (d_out <= w + 2 * vox) & ((sub == value) | (sub == s) | obj) & data
            if region.sum() < 8:
                break
            b, c, r = _fit_levels(f, model, region)
            q = _superlevel(model, int(obj.sum()))
            # the shell within ``w`` of the current surface, on both sides (d_out is 0
            # inside, so its outer half is restricted to the outside)
            band = (~obj & (d_out <= w)) | (obj & (d_in <= w))
            free = band & ((sub == value) | (sub == s) | obj) & zone
            if vote is None:  # on the contrast single voxels see (the model's peak)
                vote = abs(c) * float(model.max()) < self.min_contrast * r
            if not vote:
                local = None
                if thick and self.pool_vox > 0 and inner.any() and outer.any():
                    # the levels where each part of the surface is (the surroundings
                    # need not be alike all round: a limited tilt range's response
                    # smears an object along the beam and darkens its sides across it)
                    sg = 1.5 * self.pool_vox * vox / spacing
                    local = _local_levels(f, model, inner, outer, b, c, sg, free & data)
                    beyond = (f - (local[0] + local[1] * q)) * np.sign(c) > 0
                else:
                    beyond = (f - (b + c * q)) * np.sign(c) > 0
                can_pool = self.offset_vox > 0 and thick
                if pooled and can_pool:
                    beyond = self._offset(
                        f, b, c, region, q, model, free & data, beyond, d_out, d_in, local=local
                    )
            elif thick and self.pool_vox > 0 and inner.any() and outer.any():
                can_pool = self.offset_vox > 0
                if pooled and can_pool:  # the vote has settled: where no offset, obj stays
                    # the voxels the edge's own blur may be fitted on (``_edge_region``)
                    allowed = ((sub == value) | (sub == s) | obj) & data
                    beyond = self._offset(
                        f, b, c, region, q, model, free & data, obj, d_out, d_in, outer, allowed
                    )
                else:
                    beyond = self._vote(f, inner, outer, r, q, d_out, d_in, free & data)
                    if beyond is None:
                        break
            else:
                break
            keep = (obj & ~band) | (free & beyond) | core
            comps, n_comps = ndi.label(keep, _STRUCT)
            # the components that hold a voxel of the object (a lookup, not a sort)
            hit = np.bincount(comps[obj & keep], minlength=n_comps + 1) > 0
            hit[0] = False
            new = hit[comps] & ((sub == value) | (sub == s) | obj)
            if not new.any():
                break
            settled = np.array_equal(new, obj)
            if not settled:
                key = _digest(new)
                # a few voxels cycling through states it had: settled
                settled = key in seen
                if not settled:
                    seen.add(key)
                    moved = int(np.count_nonzero(new ^ obj))
                    obj = new
                    # fewer than ``settle`` of the object's voxels still move
                    settled = moved <= self.settle * np.count_nonzero(obj)
            if settled:
                if pooled or not can_pool:
                    break
                # a voted surface: one step of the pooled offset (``_offset``, ``outer``)
                pooled, left, seen = True, 1 if vote else max_rounds, {_digest(obj)}
        return obj

    def _offset(
        self,
        f,
        b,
        c,
        region,
        q,
        model,
        where,
        beyond,
        d_out,
        d_in,
        outer=None,
        allowed=None,
        local=None,
    ):
        """Band voxels inside the surface by the local surface offset (step 3b), or
        ``beyond`` (one voxel's test) where one voxel places it well enough.

        The offset of the data's surface from the model's, along the normal, is the
        least-squares shift of the model onto the data, ``δ = Σ G ∇m · (d − m) /
        Σ G |∇m|²`` (``d = (LAC − b) / c``, ``m`` the model, ``G`` a Gaussian of
        ``ρ`` over the voxels within 1.5 voxels of the surface); a voxel is inside
        where the shifted model ``m + |∇m| δ`` exceeds ``q``. With ``ρ = 0`` this is
        one voxel's test; ``ρ`` is the least that brings the offset's noise to
        ``offset_vox`` voxels: one voxel's position noise ``s1`` (the residual SD where
        the model is flat, over the contrast times the model's steepest slope), divided
        by the number of independent samples a Gaussian of ``ρ`` averages
        (``(ρ² + s²) / s²`` for noise correlated over the smoothing ``s``), at most
        ``max_pool`` voxels.
        """
        step = self.spacing / self.vox
        grads = np.gradient(model, *step)
        g2 = sum(g * g for g in grads)
        grad = np.sqrt(g2)
        gmax = float(grad[where].max()) if where.any() else 0.0
        # the noise where the model is flat (not its misfit near a misplaced surface)
        flat = region & (grad < 0.1 * gmax)
        if gmax <= 0 or np.count_nonzero(flat) < 20:
            return beyond  # the noise cannot be told from the model's misfit: no pooling
        noise = float(np.std(f[flat] - b - c * model[flat]))
        s1 = noise / abs(c) / gmax
        if s1 <= self.offset_vox:
            return beyond
        s = max(self.smooth_vox, 0.5)
        rho = min(s * np.sqrt((s1 / self.offset_vox) ** 2 - 1), self.max_pool)
        sg = rho / step
        near = where & (np.maximum(d_out, d_in) <= 1.5 * self.vox)
        if outer is not None:
            # a voted object: the step with the tomogram's blur gives a surface that
            # follows the edge smoothly (the vote's is ragged by up to a layer, which
            # reads as more blur); the edge's own blur is measured there, and the step
            # from the vote's surface is taken again with it
            first = self._offset_and_contrast(f, b, c, outer, q, model, grad, near, sg, beyond)
            found = self._edge_model(f, first, self._edge_region(first, allowed))
            if found is None:
                return beyond
            model, q = found
            grad = np.sqrt(sum(g * g for g in np.gradient(model, *step)))
            return self._offset_and_contrast(f, b, c, outer, q, model, grad, near, sg, beyond)
        if local is not None:
            res = (f - local[0]) / local[1] - model
        else:
            res = (f - b) / c - model  # the data minus the model, in units of the contrast
        num = ndi.gaussian_filter(np.where(near, grad * res, 0).astype(np.float32), sg)
        den = ndi.gaussian_filter(np.where(near, g2, 0).astype(np.float32), sg)
        ok = den > 1e-6
        delta = num / np.where(ok, den, 1)
        return np.where(ok, model + grad * delta > q, beyond)

    def _edge_region(self, obj, allowed):
        """The voxels of ``allowed`` within 3 voxels of ``obj``'s surface, on both sides:
        where :meth:`_edge_model` fits ``obj``'s edge (:func:`estimate_blur`'s reach).

        Centred on the surface whose blur is fitted, not on the vote's or cut by the band
        the surface may move in: a window that holds less of one side of the edge than of
        the other, or only the layer or two beside a surface that the same noisy data
        placed, reads the edge as sharper than it is (the suite's noise 0.06 µm⁻¹
        vacuoles: σ 0.89-0.93 voxel over the band around the vote's surface, 1.18 over
        this window, 1.32 over it about the true surface; their surfaces then moved out by
        7-9 %).
        """
        return allowed & _near_surface(obj, self.spacing, 3 * self.vox)

    def _edge_model(self, f, obj, region):
        """``obj`` blurred with the blur of its own edge and the level at which that model
        has ``obj``'s volume, ``(model, q)``; None where the edge has no width in
        :data:`_EDGE_BLURS` (not an edge a blurred step describes: keep the vote's surface).

        The blur is the one whose blurred mask ``m`` fits the (smoothed) LAC at the
        ``region`` voxels (:meth:`_edge_region`) best, ``LAC ≈ b + c · m + e · |∇m|`` by
        least squares, over ``hypot(σ_blur, smooth)`` for σ_blur in :data:`_EDGE_BLURS`,
        refined by the vertex of the parabola through the best and its two neighbours.
        The term ``e · |∇m|`` takes up a uniform offset of the surface, to which the width
        is nearly orthogonal (about the surface an offset changes the edge's even part,
        the width its odd part); ``obj`` should follow the edge at least as smoothly as
        the pooled offset does (a surface ragged by a layer reads as more blur). A best
        width at either end of the range (sharper than the smoothing alone, or wider than
        2.5 voxels of blur) means the surface does not lie at such an edge (e.g. across a
        part of the object the classifier missed, where it is the object on both sides).
        """
        pts = np.nonzero(region)
        if pts[0].size < 20:
            return None
        step = self.spacing / self.vox
        # central differences at the region's voxels (np.gradient's, without the arrays)
        lo = [np.maximum(p - 1, 0) for p in pts]
        hi = [np.minimum(p + 1, n - 1) for p, n in zip(pts, obj.shape, strict=True)]
        span = [(h - l_) * st for h, l_, st in zip(hi, lo, step, strict=True)]
        y = f[pts].astype(np.float64)
        mask = obj.astype(np.float32)

        def residual(sig):
            m = ndi.gaussian_filter(mask, sig)
            g2 = np.zeros(y.size)
            for axis in range(obj.ndim):
                up, down = list(pts), list(pts)
                up[axis], down[axis] = hi[axis], lo[axis]
                d = (m[tuple(up)] - m[tuple(down)]) / np.where(span[axis] > 0, span[axis], 1)
                g2 += d.astype(np.float64) ** 2
            x = np.stack([np.ones_like(y), m[pts].astype(np.float64), np.sqrt(g2)], axis=1)
            coef = np.linalg.lstsq(x, y, rcond=None)[0]
            return float(np.sqrt(np.mean((y - x @ coef) ** 2)))

        sig = np.hypot(np.asarray(_EDGE_BLURS, dtype=float), self.smooth_vox)
        err = np.array([residual(s_) for s_ in sig])
        best, i = _vertex(sig, err)
        if i in (0, sig.size - 1):
            return None
        model = ndi.gaussian_filter(mask, best)
        return model, _superlevel(model, int(np.count_nonzero(obj)))

    def _offset_and_contrast(self, f, b, c, outer, q, model, grad, near, sg, beyond):
        """:meth:`_offset` for a voted object, the offset fitted together with the local
        contrast: band voxels inside the shifted surface, ``beyond`` where the fit has no
        edge.

        The offset alone assumes the contrast ``c`` all along the surface. Where the
        object's side of the edge is fainter (a nucleus's plain nucleoplasm beside the
        dense heterochromatin rim that sets ``c``, a dim patch of a textured nucleus) the
        data lie below the model inside, which reads as the edge lying further in (by
        about √π σ times the missing fraction of the contrast), wherever the surface is:
        the estimate never reaches zero and, repeated, walks the surface inwards (the
        512³ lymphocyte's nucleus, -2.7 → -4.8 % in 20 rounds without settling). Here
        ``LAC - b ≈ c (u · m + v · |∇m|)`` is fitted by least squares over the same
        Gaussian patch (``u`` the local contrast in units of ``c``, ``b`` the
        surroundings' local level, the vote's Gaussian of the ``outer`` layer), and the
        offset is ``v / u`` whatever the local contrast; patches with ``u`` < ¼ (no edge
        of this object) keep ``beyond``. One step from the vote's settled surface, not
        repeated: the vote leaves it within a layer of the edge, and each step costs
        about a round. Known biases: a model blurred more than the edge reads the edge's
        steeper slope as more contrast (``u`` > 1; only the two layers beside the surface
        are fitted, where contrast and width are one number), whose half level then
        lies above the data's mean there, i.e. the edge further in, by about ``(u − 1) /
        (2 u |∇m|)`` (0.7 voxel for a model of 1.75 on an edge of 1.2 voxels), and one
        blurred less, further out: so :meth:`_offset` passes the model with the edge's
        own blur (:meth:`_edge_model`); the surroundings' level read 2 σ out above the
        one at the edge (a gradient) reads as the edge lying inside.
        """
        vox, spacing = self.vox, self.spacing
        box = _kernel_box(near, sg)
        nb, fb, mb, gb = near[box], f[box], model[box], grad[box]
        # the surroundings' local level (the vote's Gaussian of the outer layer)
        sl = 1.5 * self.pool_vox * vox / spacing
        ob = outer[box]
        den = ndi.gaussian_filter(ob.astype(np.float32), sl)
        b_loc = ndi.gaussian_filter(np.where(ob, fb, 0).astype(np.float32), sl)
        b_loc = np.where(den > 1e-3, b_loc / np.maximum(den, 1e-12), np.float32(b))
        y = (fb - b_loc) / np.float32(c)

        def g_(a):
            return ndi.gaussian_filter(np.where(nb, a, 0).astype(np.float32), sg)

        a11, a12, a22 = g_(mb * mb), g_(mb * gb), g_(gb * gb)
        r1, r2 = g_(mb * y), g_(gb * y)
        det = a11 * a22 - a12 * a12
        ok = (a22 > 1e-6) & (det > 1e-6 * a11 * a22)
        det = np.where(ok, det, 1)
        u = (a22 * r1 - a12 * r2) / det
        v = (a11 * r2 - a12 * r1) / det
        ok &= u > 0.25  # an edge of this object there (at least a quarter of its contrast)
        delta = v / np.where(ok, u, 1)
        out = beyond.copy()
        out[box] = np.where(ok, mb + gb * delta > q, beyond[box])
        return out

    def _vote(self, f, inner, outer, r, q, d_out, d_in, where):
        """Band voxels beyond the local levels by a vote along the surface (step 3), or
        None when the contrast is too low for that too."""
        spacing, vox, pool = self.spacing, self.vox, self.pool_vox
        b = float(np.median(f[outer]))
        c = float(np.median(f[inner])) - b
        if abs(c) < self.min_contrast * r / np.sqrt(4 * np.pi * pool**2):
            return None
        sg = 1.5 * pool * vox / spacing
        # only the voxels to decide: their local levels, layers and votes
        points = np.nonzero(where)
        out = np.zeros(f.shape, dtype=bool)
        if not points[0].size:
            return out
        level = np.full(points[0].size, b + c * q, dtype=np.float32)
        # the local levels where the layers' Gaussians reach (elsewhere they are 0: the
        # global level), computed in that box only and for the voxels to decide only
        # (:func:`_gaussian_at`: the same values)
        box = _kernel_box(inner | outer, sg)
        at = mask_box(where[box])
        if at is not None:
            keep = tuple(
                slice(k.start + b_.start, k.stop + b_.start) for k, b_ in zip(at, box, strict=True)
            )
            inner, outer, fb = inner[box], outer[box], f[box]
            den_a = _gaussian_at(inner.astype(np.float32), sg, at)
            den_b = _gaussian_at(outer.astype(np.float32), sg, at)
            ok = (den_a > 1e-3) & (den_b > 1e-3)
            a_loc = _gaussian_at(np.where(inner, fb, 0).astype(np.float32), sg, at)
            b_loc = _gaussian_at(np.where(outer, fb, 0).astype(np.float32), sg, at)
            a_loc = a_loc / np.maximum(den_a, 1e-12)
            b_loc = b_loc / np.maximum(den_b, 1e-12)
            local = np.where(ok, b_loc + (a_loc - b_loc) * q, b + c * q)
            inside = np.ones(points[0].size, dtype=bool)
            for p, k in zip(points, keep, strict=True):
                inside &= (p >= k.start) & (p < k.stop)
            level[inside] = local[
                tuple(p[inside] - k.start for p, k in zip(points, keep, strict=True))
            ]
        above = (f[points] - level) * np.sign(c) > 0
        layer = np.rint((d_out[points] - d_in[points]) / vox).astype(np.int16)
        out[points] = _pool_at(points, above, layer, f.shape, pool * vox / spacing)
        return out


def _relabel(sub, first, obj, tile_core, value) -> int:
    """Write an object's new mask into its box of the labels (in place): voxels removed take
    the label around them outside the new surface; only the tile's core counts. Returns the
    number of voxels relabelled."""
    counts = np.zeros(obj.shape, dtype=bool)  # a tile's results count in its core
    counts[tile_core] = True
    added = obj & ~first & counts
    removed = first & ~obj & counts
    if not (added.any() or removed.any()):
        return 0
    sub[added] = value
    if removed.any():
        out = (~obj) & ~removed & (sub != 0) & (sub != value)
        if out.any():
            # the nearest voxel outside (its index only: no distances computed)
            idx = ndi.distance_transform_edt(~out, return_distances=False, return_indices=True)
            sub[removed] = sub[tuple(i[removed] for i in idx)]
    return int(added.sum() + removed.sum())
