"""Prediction: labels and probabilities of voxels, and of whole tomograms block by block
with fused features (:func:`predict_volume`).
"""

from __future__ import annotations

import functools

import numpy as np

from ..progress import log, progress
from ._coarse import CONFIDENT, _run_parallel, coarse_pass, fine_cells
from ._features import FeatureSpec, _put, _take, block_features, iter_blocks
from ._model import _class_columns, _sorted_classes, _spatial_block, _stored_spec
from ._votes import TreeVotes
from ._wide import WideChannels, near_spec, wide_scales

_ROWS = 1 << 18  # voxels per classifier call in predict_volume (bounds its temporaries)
# features are computed in the box of the voxels to classify within parts of at most this
# many voxels of a block: a block's single box spans the voxels the coarse pass left in its
# corners (the 512³ lymphocyte: 78 M voxels in such boxes for 19 M to classify; 40 M in
# boxes of 64³ parts), while smaller parts would filter more halo than they save
_FEATURE_BOX = (64, 64, 64)

# --------------------------------------------------------------------------- prediction


def predict(
    features,
    model,
    card: dict,
    *,
    block: tuple[int, int, int] | None = None,
    n_jobs: int = 1,
    out_labels=None,
    out_probabilities=None,
):
    """Classify every voxel, block by block.

    Parameters
    ----------
    features : array-like, shape (F, z, y, x)
        Numpy or zarr features computed with ``card["feature_spec"]``.
    model : classifier from :func:`train` / :func:`load_model`
    card : dict
        Its card; ``card["classes"]`` gives class names and values.
    block : tuple of 3 int, optional
        Voxels per step; default the feature array's chunks, else 64³. Memory is about
        ``block voxels × (4·F + 16·C)`` bytes.
    n_jobs : int
        Threads for forest prediction.
    out_labels : array-like, shape (z, y, x), optional
        Destination for labels (numpy or zarr, uint8); allocated if omitted.
    out_probabilities : array-like, shape (C, z, y, x), optional
        Destination for probabilities (numpy or zarr, float32); allocated if omitted.

    Returns
    -------
    labels : ndarray, shape (z, y, x), uint8
        Class value of the most probable class.
    probabilities : ndarray, shape (C, z, y, x), float32
        Class probabilities, channels in ascending class value order (``card["classes"]``
        order as returned by :func:`train` and :func:`load_model`).
    """
    classes = _sorted_classes(card["classes"])
    values = np.array(list(classes.values()), dtype=np.uint8)
    n_feat = len(card["feature_names"])
    fshape = tuple(int(n) for n in features.shape)
    if len(fshape) != 4 or fshape[0] != n_feat:
        raise ValueError(
            f"features have shape {fshape}; the model expects ({n_feat}, z, y, x) "
            f"({', '.join(card['feature_names'][:3])}, …)"
        )
    stored = _stored_spec(features)
    if stored is not None and stored != card["feature_spec"]:
        raise ValueError(
            f"features were computed with {stored} but the model expects {card['feature_spec']}"
        )
    model_classes = [int(c) for c in model.classes_]
    missing = [int(v) for v in values if int(v) not in model_classes]
    if missing:
        raise ValueError(f"model cannot predict class values {missing} listed in its card")
    columns = np.array([model_classes.index(int(v)) for v in values])
    shape = fshape[1:]
    if out_labels is None:
        out_labels = np.zeros(shape, dtype=np.uint8)
    if out_probabilities is None:
        out_probabilities = np.zeros((values.size, *shape), dtype=np.float32)
    if tuple(out_labels.shape) != shape or tuple(out_probabilities.shape) != (values.size, *shape):
        raise ValueError("out_labels/out_probabilities have the wrong shape")
    blocks = iter_blocks(shape, _spatial_block(features, block))
    old_jobs = getattr(model, "n_jobs", None)
    if old_jobs is not None:
        model.n_jobs = n_jobs
    try:
        for core in progress(blocks, len(blocks), "classify"):
            fb = np.asarray(features[(slice(None), *core)], dtype=np.float32)
            bshape = fb.shape[1:]
            X = np.ascontiguousarray(fb.reshape(n_feat, -1).T)
            if not np.isfinite(X).all():
                raise ValueError(
                    f"features contain NaN/inf in block {tuple((s.start, s.stop) for s in core)}"
                )
            proba = model.predict_proba(X)[:, columns].astype(np.float32)
            out_labels[core] = values[np.argmax(proba, axis=1)].reshape(bshape)
            out_probabilities[(slice(None), *core)] = proba.T.reshape(values.size, *bshape)
    finally:
        if old_jobs is not None:
            model.n_jobs = old_jobs
    return out_labels, out_probabilities


def used_features(model, n_features: int) -> np.ndarray:
    """Which feature columns the fitted model reads at all (bool, shape ``(n_features,)``).

    A tree ensemble reads a feature only at the split nodes that test it; a feature no
    split tests cannot change any prediction, so it need not be computed. Unknown model
    types are assumed to read every feature.
    """
    used = np.zeros(int(n_features), dtype=bool)
    trees = getattr(model, "estimators_", None)
    predictors = getattr(model, "_predictors", None)
    if trees is not None and len(trees) and hasattr(np.ravel(trees)[0], "tree_"):
        for est in np.ravel(trees):
            f = est.tree_.feature
            used[f[f >= 0]] = True
    elif predictors is not None:  # histogram gradient boosting
        for stage in predictors:
            for pred in stage:
                nodes = pred.nodes
                used[nodes["feature_idx"][~nodes["is_leaf"].astype(bool)]] = True
    else:
        used[:] = True
    return used


def subset_spec(spec: FeatureSpec, used) -> tuple[FeatureSpec, np.ndarray]:
    """The smallest spec whose channels include every used channel of ``spec``.

    Families yield their channels per scale together (a Hessian's three eigenvalues), so a
    family is kept at a scale when any of its channels there is used.

    Parameters
    ----------
    spec : FeatureSpec
    used : array of bool, shape (spec.n_features,)
        From :func:`used_features`.

    Returns
    -------
    sub : FeatureSpec
        Features computed with it equal the same channels of ``spec`` exactly (every
        channel is computed on the same window of the volume, whatever the halo).
    columns : ndarray of int, shape (sub.n_features,)
        Column of each of ``sub``'s channels in ``spec``'s channel order.

    Examples
    --------
    >>> spec = FeatureSpec(sigmas=(1.0, 2.0), families=("gaussian", "ggm"))
    >>> sub, cols = subset_spec(spec, [False, True, False, False, True])
    >>> sub.names(), cols.tolist()
    (['gaussian_s1', 'ggm_s2'], [1, 4])
    """
    names = spec.names()
    used = np.asarray(used, dtype=bool)
    if used.shape != (len(names),):
        raise ValueError(f"used has shape {used.shape}, expected ({len(names)},)")
    wanted = {n for n, u in zip(names, used, strict=True) if u}
    per_family: dict[str, tuple[float, ...]] = {}
    for fam in spec.families:
        keep = []
        for s in spec.scales(fam):
            sub = FeatureSpec(sigmas=(s,), families=(fam,), include_raw=False)
            if wanted & set(sub.names()):
                keep.append(s)
        if keep:
            per_family[fam] = tuple(keep)
    include_raw = "raw" in wanted or not per_family
    if per_family:
        sigmas = tuple(sorted({s for v in per_family.values() for s in v}))
        sub = FeatureSpec(
            sigmas=sigmas,
            families=tuple(per_family),
            include_raw=include_raw,
            family_sigmas=per_family,
        )
    else:
        sub = FeatureSpec(sigmas=(1.0,), families=(), include_raw=True)
    index = {n: i for i, n in enumerate(names)}
    return sub, np.array([index[n] for n in sub.names()], dtype=np.int64)


def _upsample(cells: np.ndarray, stride: int, box: tuple[slice, ...]) -> np.ndarray:
    """Lattice-cell values over the voxels of ``box`` (each voxel takes its cell's value)."""
    first = [s.start // stride for s in box]
    out = cells[
        (..., *(slice(f, (s.stop - 1) // stride + 1) for f, s in zip(first, box, strict=True)))
    ]
    for axis in range(3):  # np.repeat per axis: a third of the time of fancy indexing
        out = np.repeat(out, stride, axis=out.ndim - 3 + axis)
    crop = (
        slice(s.start - f * stride, s.stop - f * stride) for f, s in zip(first, box, strict=True)
    )
    return np.ascontiguousarray(out[(..., *crop)])


def _argmax0(proba: np.ndarray) -> np.ndarray:
    """``np.argmax(proba, axis=0)`` (the first of equal maxima) as uint8, by a running
    comparison over the channels (elementwise and contiguous: a fifth of the time)."""
    best = proba[0].copy()
    index = np.zeros(best.shape, dtype=np.uint8)
    for c in range(1, proba.shape[0]):
        index[proba[c] > best] = c
        np.maximum(best, proba[c], out=best)
    return index


def _margin(proba: np.ndarray) -> np.ndarray:
    """``1 − (p_max − p_second)`` along axis 0 of ``(C, …)`` probabilities, float32."""
    if proba.shape[0] < 2:
        return np.zeros(proba.shape[1:], dtype=np.float32)
    # the two largest by running max/min over the channels (elementwise, contiguous: a
    # fifth of np.partition's time along axis 0; the same two values)
    top = np.maximum(proba[0], proba[1])
    second = np.minimum(proba[0], proba[1])
    low = np.empty_like(top)
    for p in proba[2:]:
        np.minimum(top, p, out=low)
        np.maximum(second, low, out=second)
        np.maximum(top, p, out=top)
    return np.clip(1.0 - (top - second), 0.0, 1.0).astype(np.float32)


def predict_volume(
    volume,
    model,
    card: dict,
    *,
    block: tuple[int, int, int] = (64, 64, 64),
    n_jobs: int = 1,
    out_labels=None,
    out_probabilities=None,
    out_uncertainty=None,
    mask=None,
    region: tuple[slice, slice, slice] | None = None,
    coarse: int | None = None,
    coarse_confident: float = CONFIDENT,
    coarse_margin: int = 1,
    coarse_classes=("ice",),
    feature_subset: bool = True,
    wide_stride: int | None = 2,
    exact_probabilities: bool = False,
):
    """Segment a tomogram directly: features per block (with halo), classified at once.

    No feature store is needed: each block's features (``card["feature_spec"]``) are
    computed from the block grown by the spec's halo, classified and dropped, so memory is
    bounded by the block size and the number of threads, not by the volume size. Results
    equal :func:`predict` on :func:`sxtflow.segment.compute_features` of the volume
    (with ``coarse=None, wide_stride=None``; see those for what the shortcuts change).

    Parameters
    ----------
    volume : array-like, shape (z, y, x)
        Calibrated tomogram in µm⁻¹ (numpy, memory-mapped or zarr), finite.
    model : classifier from :func:`train` / :func:`load_model`
    card : dict
        Its card (``classes``, ``feature_spec``).
    block : tuple of 3 int
        Core block in voxels. Working memory per thread is about
        ``(F + 20) × (block + 2·halo)³ × 4`` bytes plus ``block voxels × 4·F`` for the
        classifier input; larger blocks waste less on halos.
    n_jobs : int
        Threads; each works on its own block (filters and tree traversal release the GIL).
        With zarr outputs and ``n_jobs > 1`` their spatial chunks must tile ``block``
        exactly (e.g. chunks = block), so no two threads write the same chunk.
    out_labels : array-like, shape (z, y, x), optional
        Destination (numpy or zarr, uint8); allocated if omitted.
    out_probabilities : array-like, shape (C, z, y, x), optional
        Destination for class probabilities (float32, channels in ascending class value);
        probabilities are not kept when omitted (they are ``C`` times the volume in float32).
    out_uncertainty : array-like, shape (z, y, x), optional
        Destination for the margin uncertainty (see :func:`uncertainty`), float32.
    mask : ndarray of bool, shape (z, y, x) or (y, x), optional
        Voxels to classify (e.g. the reconstruction's field of view); others get label 0,
        probability 0 and uncertainty 0, and blocks without any masked voxel are skipped.
    region : tuple of 3 slice, optional
        Classify only this box of the volume (e.g. one slice, for a preview); the outputs
        then have the box's shape. Features still read their halo from the whole volume,
        so the result equals the box of the whole-volume prediction exactly, whatever the
        blocks.
    coarse : int, optional
        Coarse-to-fine: classify a lattice of every ``coarse``-th voxel first
        (:func:`coarse_pass`: the same model on the same features, ``coarse``³ times fewer
        voxels), then at full resolution only the lattice cells whose class is not
        confident, or differs from a neighbour's, or lie within ``coarse_margin`` cells of
        such a cell (:func:`fine_cells`). Every other voxel takes its cell's class, with
        the probabilities of its lattice point. Where the full resolution is computed the
        result equals the full prediction exactly; a voxel can differ only inside a
        block of confident, agreeing lattice points (a structure thinner than the lattice
        that no lattice point's features noticed). None (default): every voxel at full
        resolution. Ignored with ``region``, and when the card has none of
        ``coarse_classes``.
    coarse_confident : float
        Probability of its most probable class at or above which a lattice point is
        confident (:func:`fine_cells`; 0.8: lower bars barely change the lattice, 0.9
        sent the reconstruction's noisier ice at the field of view's rim to full
        resolution, where it came out ice voxel for voxel).
    coarse_margin : int
        Lattice cells added around the unsure ones (26-connected).
    coarse_classes : sequence of str, optional
        Classes whose confident lattice cells keep the coarse answer (default ice: the
        other classes may hold structures thinner than the lattice that a confident
        lattice point beside them does not reveal, see :func:`fine_cells`); None lets
        every class keep it.
    feature_subset : bool
        Compute only the features the model reads (:func:`used_features`,
        :func:`subset_spec`); the others cannot change a prediction, so the probabilities
        are identical. False computes every feature of the spec.
    wide_stride : int, optional
        Take the wide Gaussian channels (a scale with only the ``gaussian`` family, σ ≥
        2·``wide_stride``, wider than every other feature: e.g. σ = 8 beside σ ≤ 3.5) from
        their samples on every ``wide_stride``-th voxel, interpolated (cubic B-spline,
        :class:`WideChannels`), instead of filtering each block's 4σ halo: a Gaussian that
        wide is band-limited, so the values differ from the exact ones by about float32
        rounding (≤ 1.2e-6 µm⁻¹ at σ = 8, stride 2), which can change a voxel's answer
        only where a tree splits on that channel closer than that to the voxel's value
        (docs/performance.md: the count on the 512³ benchmark cell). None: every channel
        exact, as :func:`predict` on :func:`compute_features`. Ignored with ``region``.
    exact_probabilities : bool
        False (default): with a scikit-learn random forest or extra trees, a voxel leaves
        the forest once the trees not yet evaluated can no longer change its most probable
        class (:class:`TreeVotes`; checked from just over half the trees on): its label is
        the whole forest's exactly, its probabilities (and uncertainty) are the mean vote
        of the trees evaluated, at least half of them. True: every tree for every voxel,
        probabilities equal to the forest's ``predict_proba``. The coarse pass always uses
        every tree (its confidence decides where the full resolution runs).

    Returns
    -------
    labels : ndarray or zarr array, shape (z, y, x), uint8
        Class value of the most probable class.
    probabilities : array-like or None
        ``out_probabilities`` if given, else None.

    Raises
    ------
    ValueError
        ``volume`` not 3D, non-finite values, outputs of the wrong shape, a model that
        cannot predict the card's classes, or a bad ``block``/``n_jobs``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vol = rng.normal(0.1, 0.01, (16, 16, 16)).astype(np.float32)
    >>> vol[4:12, 4:12, 4:12] += 0.3
    >>> ann = np.zeros(vol.shape, np.uint8); ann[8, 0:2] = 1; ann[8, 7:9, 7:9] = 2
    >>> spec = FeatureSpec(sigmas=(1.0,), families=("gaussian",))
    >>> from sxtflow.segment import compute_features, train
    >>> model, card = train([(compute_features(vol, spec), ann)], {"ice": 1, "cell": 2},
    ...                     spec=spec, n_estimators=5, cv_folds=0)
    >>> labels, _ = predict_volume(vol, model, card, block=(8, 8, 8))
    >>> int(labels[8, 8, 8]), int(labels[0, 0, 0])
    (2, 1)
    """
    spec, shape = _check_model_input(volume, model, card, n_jobs)
    values, columns = _class_columns(model, card)
    mask = _check_mask(mask, shape)
    region = _check_region(region, shape)
    shape = tuple(s.stop - s.start for s in region)
    if out_labels is None:
        out_labels = np.zeros(shape, dtype=np.uint8)
    outs = _Outputs(out_labels, out_probabilities, out_uncertainty)
    outs.check(shape, values.size, block, n_jobs)
    sub, sub_cols = _model_features(model, spec, feature_subset)
    whole = region == _check_region(None, shape)
    wide = _wide_channels(volume, sub, wide_stride if whole else None, n_jobs)
    cells = coarse_p = None
    stride = int(coarse or 0)
    if stride > 1 and whole:
        cells, coarse_p = _coarse_cells(
            volume, model, card, sub, sub_cols, spec.n_features, stride=stride, mask=mask,
            n_jobs=n_jobs,
            confident=coarse_confident, margin=coarse_margin, classes=coarse_classes,
        )  # fmt: skip
    blocks = iter_blocks(shape, block)

    votes = None if exact_probabilities else TreeVotes.of(model)
    work = functools.partial(
        _predict_block, volume=volume, region=region, mask=mask, cells=cells,
        coarse_p=coarse_p, stride=stride, values=values, model=model, columns=columns,
        sub=sub, sub_cols=sub_cols, n_features=spec.n_features, outs=outs, wide=wide,
        votes=votes,
    )  # fmt: skip
    _run_blocks(work, blocks, model, n_jobs)
    return out_labels, out_probabilities


def _predict_block(core, *, volume, region, mask, cells, coarse_p, stride, values, model,
                   columns, sub, sub_cols, n_features, outs, wide, votes) -> None:  # fmt: skip
    """Classify one block of :func:`predict_volume` and write it (``core`` indexes the
    outputs, ``at`` the volume): the coarse answer where the lattice is sure, the features
    and the classifier in the box holding the voxels to compute."""
    at = tuple(
        slice(r.start + c.start, r.start + c.stop) for r, c in zip(region, core, strict=True)
    )
    m = None if mask is None else np.asarray(mask[at])
    if m is not None and not m.any():
        outs.write_empty(core)
        return
    bshape = tuple(c.stop - c.start for c in core)
    if cells is None:
        proba = np.zeros((values.size, *bshape), dtype=np.float32)
        fine = np.ones(bshape, dtype=bool) if m is None else m.copy()
    else:
        proba = _upsample(coarse_p, stride, core)  # the coarse answer, refined below
        fine = _upsample(cells, stride, core) | (proba.sum(axis=0) == 0)
        if m is not None:
            fine &= m
    for box in _feature_boxes(fine, split=cells is not None):
        box_at = tuple(
            slice(a.start + b.start, a.start + b.stop) for a, b in zip(at, box, strict=True)
        )
        at_box = np.nonzero(fine[box])  # C order
        pf = _classify_box(
            volume, box_at, at_box, model, columns, sub, sub_cols, n_features, wide, votes
        )
        offsets: dict = {}
        for c, p in enumerate(pf):  # proba[c][box][at_box] = p, by flat offsets
            _put(proba[(c, *box)], at_box, p, offsets)
    lab = values[_argmax0(proba)]
    if m is not None and not m.all():
        lab[~m] = 0
        proba[:, ~m] = 0.0
    outs.write(core, lab, proba)


def _bounding_box(sel: np.ndarray, offset=None) -> tuple[slice, ...] | None:
    """The bounding box of the True voxels of ``sel`` (shifted by ``offset``), or None."""
    if not sel.any():
        return None
    offset = (0,) * sel.ndim if offset is None else offset
    box = []
    for axis, o in enumerate(offset):
        hit = np.flatnonzero(sel.any(axis=tuple(a for a in range(sel.ndim) if a != axis)))
        box.append(slice(o + int(hit[0]), o + int(hit[-1]) + 1))
    return tuple(box)


def _feature_boxes(fine: np.ndarray, *, split: bool = True) -> list[tuple[slice, ...]]:
    """Boxes of a block whose features are computed: together they hold every ``fine``
    voxel (features there equal the whole-volume ones exactly: each box reads its own
    halo from the volume).

    With ``split``, the bounding box of the fine voxels of each part of at most
    ``_FEATURE_BOX`` voxels (one box would span the voxels the coarse pass left in the
    block's corners); else the block's one bounding box (every voxel is classified: the
    least halo). One box per block when the fine voxels fill it would filter less halo,
    but held the 512³ benchmark's predict at 2.99× the tomogram's memory (docs/performance.md).
    """
    if not split:
        whole = _bounding_box(fine)
        return [] if whole is None else [whole]
    return [
        b
        for part in iter_blocks(fine.shape, _FEATURE_BOX)
        if (b := _bounding_box(fine[part], [p.start for p in part])) is not None
    ]


def _check_model_input(volume, model, card: dict, n_jobs: int):
    """The card's feature spec and the volume's shape, or a ValueError."""
    spec = FeatureSpec.from_dict(card["feature_spec"])
    if list(card.get("feature_names", spec.names())) != spec.names():
        raise ValueError("card feature_names do not match its feature_spec")
    shape = tuple(int(n) for n in volume.shape)
    if len(shape) != 3:
        raise ValueError(f"prediction needs a 3D (z, y, x) volume, got shape {shape}")
    if int(n_jobs) < 1:
        raise ValueError(f"n_jobs must be ≥ 1, got {n_jobs}")
    n_model = getattr(model, "n_features_in_", spec.n_features)
    if n_model != spec.n_features:
        raise ValueError(
            f"model takes {n_model} features but its card's spec gives {spec.n_features}"
        )
    return spec, shape


def _check_mask(mask, shape):
    """``mask`` as a bool ``(z, y, x)`` array (a ``(y, x)`` mask repeats along z), or None."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == shape[1:]:
        mask = np.broadcast_to(mask, shape)
    if mask.shape != shape:
        raise ValueError(f"mask has shape {mask.shape}, expected {shape} or {shape[1:]}")
    return mask


class _Outputs:
    """The destinations of :func:`predict_volume`: labels, optional probabilities and
    uncertainty, written block by block."""

    def __init__(self, labels, probabilities, uncertainty):
        self.labels, self.probabilities, self.uncertainty = labels, probabilities, uncertainty

    def check(self, shape, n_cls: int, block, n_jobs: int) -> None:
        """Shapes; with threads, zarr chunks that tile the block (no chunk written twice)."""
        if tuple(self.labels.shape) != shape:
            raise ValueError(f"out_labels has shape {tuple(self.labels.shape)}, expected {shape}")
        probs = self.probabilities
        if probs is not None and tuple(probs.shape) != (n_cls, *shape):
            raise ValueError(
                f"out_probabilities has shape {tuple(probs.shape)}, expected {(n_cls, *shape)}"
            )
        if self.uncertainty is not None and tuple(self.uncertainty.shape) != shape:
            raise ValueError(
                f"out_uncertainty has shape {tuple(self.uncertainty.shape)}, expected {shape}"
            )
        if int(n_jobs) > 1:
            for name, arr in (
                ("out_labels", self.labels),
                ("out_probabilities", probs),
                ("out_uncertainty", self.uncertainty),
            ):
                chunks = getattr(arr, "chunks", None)
                if isinstance(chunks, tuple) and any(
                    int(b) % int(c) for b, c in zip(block, chunks[-3:], strict=True)
                ):
                    raise ValueError(
                        f"{name} chunks {chunks[-3:]} do not tile the block {tuple(block)}: "
                        "threads would write the same chunk"
                    )

    def write_empty(self, core) -> None:
        """A block outside the mask: label 0, probability 0, uncertainty 0."""
        self.labels[core] = 0
        if self.probabilities is not None:
            self.probabilities[(slice(None), *core)] = 0.0
        if self.uncertainty is not None:
            self.uncertainty[core] = 0.0

    def write(self, core, labels, proba) -> None:
        self.labels[core] = labels
        if self.probabilities is not None:
            self.probabilities[(slice(None), *core)] = proba
        if self.uncertainty is not None:
            self.uncertainty[core] = _margin(proba)


def _model_features(model, spec: FeatureSpec, feature_subset: bool):
    """The spec of the features to compute and their columns in the model's input (None:
    all of them)."""
    used = (
        used_features(model, spec.n_features)
        if feature_subset
        else np.ones(spec.n_features, dtype=bool)
    )
    sub, sub_cols = subset_spec(spec, used) if not used.all() else (spec, None)
    if sub_cols is not None:
        log.info("the model reads %d of %d features", sub.n_features, spec.n_features)
    return sub, sub_cols


def _coarse_cells(volume, model, card, sub, sub_cols, n_features, *, stride, mask, n_jobs,
                  confident, margin, classes):  # fmt: skip
    """The coarse pass (:func:`coarse_pass`) and the lattice cells to compute at full
    resolution (:func:`fine_cells`): ``(cells, coarse probabilities)``, or ``(None, None)``
    when the coarse pass does not apply (no class keeps it, structure-tensor features)."""
    names = _sorted_classes(card["classes"])
    channels = (
        None if classes is None else [i for i, name in enumerate(names) if name in set(classes)]
    )
    if channels == []:
        log.info("coarse-to-fine skipped: the model has none of the classes %s", classes)
        return None, None
    if "structure_tensor" in sub.families:
        log.info("coarse-to-fine skipped: the model reads structure-tensor features")
        return None, None
    coarse_p = coarse_pass(
        volume,
        model,
        card,
        stride=stride,
        mask=mask,
        spec=sub,
        columns=np.arange(n_features) if sub_cols is None else sub_cols,
        n_jobs=n_jobs,
    )
    cells = fine_cells(coarse_p, confident=confident, margin=margin, coarse_channels=channels)
    log.info(
        "coarse pass (every %d-th voxel): %.1f %% of the lattice cells at full resolution",
        stride,
        100.0 * cells.mean(),
    )
    return cells, coarse_p


def _wide_channels(volume, sub: FeatureSpec, stride, n_jobs: int):
    """``(WideChannels, near spec, near rows, wide rows)`` for :func:`_classify_box`, or
    None when no channel of ``sub`` is worth taking from a lattice (:func:`wide_scales`)."""
    if not stride:
        return None
    scales = wide_scales(sub, int(stride))
    if not scales:
        return None
    near = near_spec(sub, scales)
    index = {n: i for i, n in enumerate(sub.names())}
    near_rows = [] if near is None else [index[n] for n in near.names()]
    wide_rows = [index[f"gaussian_s{float(s):g}"] for s in scales]
    log.info(
        "wide channels %s from every %d-th voxel (the other features' halo: %d voxels)",
        ", ".join(sub.names()[i] for i in wide_rows),
        int(stride),
        0 if near is None else near.halo,
    )
    return WideChannels(volume, scales, int(stride), n_jobs=n_jobs), near, near_rows, wide_rows


def _box_features(volume, box_at, sub: FeatureSpec, wide, at) -> np.ndarray:
    """``sub``'s features ``(F, n)`` at the voxels ``at`` (index arrays into the box) of one
    box: the wide channels interpolated from their lattice (``wide``, see
    :func:`_wide_channels`), the others filtered over the box."""
    if "structure_tensor" in sub.families:  # smoothed products: the whole box, then gathered
        return block_features(volume, box_at, sub)[(slice(None), *at)]
    if wide is None:
        return block_features(volume, box_at, sub, at=at)
    channels, near, near_rows, wide_rows = wide
    out = np.empty((sub.n_features, len(at[0])), dtype=np.float32)
    if near is not None:
        out[near_rows] = block_features(volume, box_at, near, at=at)
    offsets: dict = {}
    for row, arr in zip(wide_rows, channels.box(box_at), strict=True):
        out[row] = _take(arr, at, offsets)
    return out


def _classify_box(volume, box_at, at, model, columns, sub, sub_cols, n_features, wide,
                  votes=None):  # fmt: skip
    """Probabilities ``(C, n)`` of the voxels ``at`` (index arrays ``(z, y, x)`` into the
    box) of one box of the volume, from the box's features (read with their halo), the
    classifier's input in pieces of ``_ROWS`` (through ``votes``, a :class:`TreeVotes`
    stopping early per voxel, when given)."""
    feats = _box_features(volume, box_at, sub, wide, at)
    n = feats.shape[1]
    pf = np.empty((len(columns), n), dtype=np.float32)
    for i in range(0, n, _ROWS):
        j = slice(i, min(n, i + _ROWS))
        if sub_cols is None:
            X = np.ascontiguousarray(feats[:, j].T)
        else:  # columns the model never reads stay 0
            X = np.zeros((j.stop - j.start, n_features), dtype=np.float32)
            X[:, sub_cols] = feats[:, j].T
        if votes is None:
            p = model.predict_proba(X)
        else:
            p, _ = votes.predict_proba(X)
        pf[:, j] = p[:, columns].T
        del X, p
    return pf


def _run_blocks(work, blocks, model, n_jobs: int) -> None:
    """``work(block)`` for every block, on ``n_jobs`` threads (the model on one each)."""
    _run_parallel(work, blocks, model, n_jobs, "segment")


def _check_region(region, shape) -> tuple[slice, ...]:
    """``region`` as 3 slices with explicit, in-bounds, non-empty start/stop (step 1)."""
    if region is None:
        return tuple(slice(0, int(n)) for n in shape)
    region = tuple(region)
    if len(region) != 3 or not all(isinstance(r, slice) for r in region):
        raise ValueError(f"region must be 3 slices (z, y, x), got {region!r}")
    out = []
    for r, n in zip(region, shape, strict=True):
        start, stop, step = r.indices(int(n))
        if step != 1 or stop <= start:
            raise ValueError(f"region {region!r} is empty or strided in a volume of shape {shape}")
        out.append(slice(start, stop))
    return tuple(out)
