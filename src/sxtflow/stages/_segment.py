"""Stages features, train, predict, refine and evaluate."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import io
from ..core import field_of_view
from ..io import InputError, Volume
from ..options import DEFAULTS
from ._common import (
    _FEAT,
    _TRAIN,
    MODEL_VOXEL_TOLERANCE,
    PathLike,
    _label_table,
    _per_class,
    check_block,
    log,
)

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- segment


def feature_spec(sigmas=None, families=None, family_sigmas=None, **_ignored):
    """The :class:`~sxtflow.segment.FeatureSpec` of the config's ``features`` section
    (``block`` and other keys are ignored; omitted keys take the spec's defaults)."""
    from ..segment import FeatureSpec

    return FeatureSpec(
        **{k: tuple(v) for k, v in (("sigmas", sigmas), ("families", families)) if v is not None},
        family_sigmas=family_sigmas or (),
    )


def run_features(
    tomogram: PathLike,
    out: PathLike,
    *,
    sigmas: Sequence[float] | None = _FEAT["sigmas"],
    families: Sequence[str] | None = _FEAT["families"],
    family_sigmas: dict[str, Sequence[float]] | None = _FEAT["family_sigmas"],
    block: Sequence[int] = _FEAT["block"],
) -> None:
    """Multi-scale voxel features of a tomogram, block-wise, into a zarr store.

    ``sigmas`` and ``family_sigmas`` (family → scales, overriding ``sigmas`` for that
    family) are in voxels; see :class:`sxtflow.segment.FeatureSpec`.
    """
    from ..segment import write_features

    spec = feature_spec(sigmas, families, family_sigmas)
    block = check_block(block)
    vol = io.read_volume(tomogram)
    io.check_lac(vol.data, tomogram)
    log.info(
        "%d features (%s) on %s voxels", spec.n_features, ", ".join(spec.families), vol.data.shape
    )
    write_features(out, vol, spec, block=block)


def _nm(voxel_nm) -> str:
    """``"40"`` for an isotropic voxel size, ``"50/40/40"`` (z/y/x) otherwise."""
    values = [float(v) for v in np.broadcast_to(np.asarray(voxel_nm, float), (3,))]
    return f"{values[0]:g}" if len(set(values)) == 1 else "/".join(f"{v:g}" for v in values)


def _voxel_differs(a, b, tolerance: float) -> float:
    """Largest relative difference of two voxel sizes (0 when within ``tolerance``)."""
    rel = float(np.max(np.abs(np.asarray(a, float) / np.asarray(b, float) - 1)))
    return rel if rel > tolerance else 0.0


def _one_voxel_size(first, voxel_nm, path, first_path):
    """The training voxel size: the first tomogram's; another one is refused (features are in
    voxels, so one model cannot learn from both)."""
    if first is None:
        return tuple(voxel_nm)
    if _voxel_differs(voxel_nm, first, MODEL_VOXEL_TOLERANCE):
        raise InputError(
            path,
            f"voxel size {_nm(voxel_nm)} nm differs by more than "
            f"{100 * MODEL_VOXEL_TOLERANCE:g} % from the first annotated tomogram's "
            f"{_nm(first)} nm ({first_path}): features are computed in voxels, so one "
            "model cannot learn from both. Put them on one grid (config "
            "reconstruct.resample_to_nm) or annotate tomograms of one voxel size",
        )
    return first


def run_train(
    features_paths: Sequence[PathLike],
    annotation_paths: Sequence[PathLike],
    out_model: PathLike,
    *,
    classes: Mapping[str, int],
    labels=None,
    tomogram_paths: Sequence[PathLike] | None = None,
    seed: int = 0,
    estimator: str = _TRAIN["estimator"],
    n_estimators: int = _TRAIN["n_estimators"],
    max_depth: int | None = _TRAIN["max_depth"],
    min_samples_leaf: int = _TRAIN["min_samples_leaf"],
    max_per_class: int = _TRAIN["max_per_class"],
    class_weight: str = _TRAIN["class_weight"],
    min_cv_skill: float = _TRAIN["min_cv_skill"],
    fill_outlines: bool = _TRAIN["fill_outlines"],
    threads: int = 1,
) -> dict:
    """Train the voxel classifier on the sparse annotations of one or more tomograms.

    Annotations hold values of the label table ``labels`` (a path, a
    :class:`~sxtflow.labels.LabelTable`, or None for the bundled one); finer labels
    (``nucleolus``) count as their class (:meth:`~sxtflow.labels.LabelTable.class_of`).
    Every tomogram must have the same voxel size (within
    :data:`MODEL_VOXEL_TOLERANCE`): features are computed in voxels. ``tomogram_paths``
    (the tomograms the features came from) let annotations on a tomogram's original grid
    follow it when it was resampled (config ``reconstruct.resample_to_nm``). The model card
    records the voxel size, the label table, the classes and the feature spec.

    With ``fill_outlines`` each class's closed outlines whose inside is unannotated are
    filled with the class before training (:func:`sxtflow.segment.fill_outlines`; an outline
    that holds other classes only where they are not), so traced outlines teach objects
    rather than edges; the voxels filled per class are logged and recorded in the card
    (``filled_voxels``).

    Refuses (``InputError``) to write a model whose cross-validated skill is below
    ``min_cv_skill`` (see :func:`sxtflow.segment.train`), or when a feature store it read
    was replaced meanwhile (a second run writing the same results).
    """
    from ..segment import open_features, read_labels_on_grid

    if len(features_paths) != len(annotation_paths) or not features_paths:
        raise ValueError("train needs one annotation per feature store, and at least one")
    pairs = []
    spec = voxel = None
    metas = [io.read_meta(p) for p in tomogram_paths] if tomogram_paths else None
    tokens = {}
    for i, (fpath, apath) in enumerate(zip(features_paths, annotation_paths, strict=True)):
        tokens[fpath] = io.store_token(fpath)
        arr, fspec, voxel_nm = open_features(fpath)
        if spec is not None and fspec != spec:
            raise InputError(fpath, "feature specification differs from the other tomograms'")
        voxel = _one_voxel_size(voxel, voxel_nm, fpath, features_paths[0])
        spec = fspec
        source = metas[i].get("resampled_from") if metas else None
        ann = read_labels_on_grid(apath, arr.shape[1:], voxel_nm, source=source)
        pairs.append((arr, ann, str(apath)))
    options = dict(
        n_estimators=n_estimators, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
        seed=seed, threads=threads, max_per_class=max_per_class, estimator=estimator,
        class_weight=class_weight, min_cv_skill=min_cv_skill, fill_outlines=fill_outlines,
    )  # fmt: skip
    return _train_and_save(
        pairs, spec, classes, out_model, annotation_paths, labels=labels, voxel_nm=voxel,
        before_save=lambda: _check_unchanged(tokens), **options,
    )[1]  # fmt: skip


def _check_unchanged(tokens: Mapping) -> None:
    """Concurrency guard: a second run (after a forced ``--unlock``) may have replaced a
    feature store while training read it; a model from a mix of two stores is not written."""
    for fpath, token in tokens.items():
        if io.store_token(fpath) != token:
            raise InputError(
                fpath,
                "the feature store was replaced while training read it (another run writing "
                "the same results?); the model was not written: let the other run finish, "
                "then rerun",
            )


def _train_and_save(
    pairs, spec, classes, out_model, annotation_paths, *, labels, voxel_nm, threads,
    before_save=None, **options,
):  # fmt: skip
    """``segment.train`` on ``(features, annotation, path)`` pairs; the model saved (skops)
    once ``before_save()`` (a last check) has returned.

    Annotations are mapped onto the classes through the label table (values outside it, or
    of no class, are errors naming the file); every class needs annotated voxels (the error
    names the classes found). The card records the voxel size and the label table.
    """
    from .. import segment

    table = _label_table(labels)
    classes = {str(k): int(v) for k, v in classes.items()}
    for name, value in classes.items():
        if table.values.get(name) != value:
            raise ValueError(f"class {name!r}={value} is not a label of {table.source}")
    lut = table.segmentation_lut(list(classes))
    mapped, found = [], set()
    for features, ann, apath in pairs:
        bad = table.unmapped_values(np.unique(ann), list(classes))
        if bad["unknown"]:
            raise InputError(
                apath, f"annotation values {bad['unknown']} are not in the label table "
                f"({table.source})",
            )  # fmt: skip
        if bad["unmapped"]:
            names = [f"{v} ({table.name(v)})" for v in bad["unmapped"]]
            raise InputError(
                apath, f"annotation values {', '.join(names)} belong to none of the classes "
                f"({', '.join(classes)})",
            )  # fmt: skip
        ann = lut[ann]
        found |= set(np.unique(ann).tolist()) - {0}
        mapped.append((features, ann, apath))
    missing = [n for n, v in classes.items() if v not in found]
    if missing:
        present = [n for n, v in classes.items() if v in found]
        raise ValueError(
            f"class(es) {', '.join(missing)} have no annotated voxels in any annotation "
            f"({', '.join(map(str, annotation_paths))}); annotate them, or set the config's "
            f"`classes` to the classes you annotated (found: {', '.join(present) or 'none'})"
        )
    where = ", ".join(str(p) for p in annotation_paths)
    model, card = segment.train(
        mapped, dict(classes), spec=spec, n_jobs=threads, where=where, **options
    )
    if before_save is not None:
        before_save()
    card["training_annotations"] = [str(p) for p in annotation_paths]
    card["voxel_nm"] = [float(v) for v in voxel_nm]
    card["label_table"] = {"source": table.source, "labels": table.to_records()}
    if out_model is not None:
        segment.save_model(out_model, model, card)
    return model, card


def _training_block(annotation: np.ndarray, halo: int, block: Sequence[int]) -> tuple:
    """The z-extent of feature blocks that computes the fewest voxels for this annotation.

    Training reads features only of blocks holding annotated voxels, each grown by the
    halo: a few painted slices want thin blocks, a virtual annotator's many slices thick
    ones. The features (and so the model) do not depend on the choice.
    """
    painted = np.flatnonzero(annotation.reshape(annotation.shape[0], -1).any(axis=1))
    nz = annotation.shape[0]
    best, best_cost = None, np.inf
    for bz in sorted({1, 4, 16, int(block[0])}):
        starts = np.unique(painted // bz) * bz
        cost = sum(min(bz, nz - z0) + 2 * halo for z0 in starts)
        if cost < best_cost:
            best, best_cost = bz, cost
    return (best, *(int(b) for b in block[1:]))


def run_train_tomograms(
    tomogram_paths: Sequence[PathLike],
    annotation_paths: Sequence[PathLike],
    out_model: PathLike | None,
    *,
    classes: Mapping[str, int],
    spec,
    labels=None,
    block: Sequence[int] = DEFAULTS["predict"]["block"],
    threads: int = 1,
    cache: dict | None = None,
    **options,
):
    """Train as :func:`run_train` does, from tomograms instead of feature stores.

    Features are computed only for the blocks that hold annotated voxels
    (:class:`sxtflow.segment.BlockFeatures`); they equal a feature store's exactly, so the
    model equals the one :func:`run_train` makes from ``features.zarr`` of the same
    tomograms with the same ``spec`` and options. Used by the annotation loop
    (``sxtflow napari``), where a few painted slices should not cost a whole feature store.
    ``cache`` (a dict, kept by the caller) holds computed feature blocks per tomogram, so
    training again after more painting computes only the new blocks. ``labels`` is the label
    table (as in :func:`run_train`); ``options`` are :func:`run_train`'s (``seed``,
    ``estimator``, ``n_estimators``, ``max_depth``, ``min_samples_leaf``, ``max_per_class``,
    ``class_weight``, ``min_cv_skill``, ``fill_outlines``), with its defaults: a model at chance is refused here
    too.

    Returns
    -------
    (model, card)
        The fitted classifier and its card; saved to ``out_model`` unless it is None.
    """
    from ..segment import BlockFeatures, read_labels_on_grid

    if len(tomogram_paths) != len(annotation_paths) or not tomogram_paths:
        raise ValueError("training needs one annotation per tomogram, and at least one")
    pairs = []
    voxel = None
    for tpath, apath in zip(tomogram_paths, annotation_paths, strict=True):
        vol = io.read_volume(tpath)
        voxel = _one_voxel_size(voxel, vol.voxel_nm, tpath, tomogram_paths[0])
        source = vol.meta.get("resampled_from")
        ann = read_labels_on_grid(apath, vol.data.shape, vol.voxel_nm, source=source)
        chunks = _training_block(ann, spec.halo, block)
        blocks = None
        if cache is not None:  # per tomogram file (and its modification time), spec and chunks
            key = (str(tpath), os.stat(tpath).st_mtime_ns, json.dumps(spec.to_dict()), chunks)
            blocks = cache.setdefault(key, {})
        pairs.append((BlockFeatures(vol.data, spec, chunks, blocks), ann, str(apath)))
    import inspect

    params = inspect.signature(run_train).parameters.values()  # run_train's defaults
    own = {"threads", "labels", "tomogram_paths"}
    defaults = {
        p.name: p.default
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name not in own
    }
    options = {**defaults, **options}
    return _train_and_save(
        pairs, spec, classes, out_model, annotation_paths, labels=labels, voxel_nm=voxel,
        threads=threads, **options,
    )  # fmt: skip


def check_model_voxel(card: Mapping, voxel_nm, tomogram_path=None, model_path=None) -> None:
    """Refuse a tomogram whose voxel size differs from the model's by more than
    :data:`MODEL_VOXEL_TOLERANCE` (features are in voxels: the model would see another scale).

    Raises
    ------
    InputError
        Naming the tomogram, both voxel sizes and what to do (resample or retrain); also for
        a model card without a voxel size.
    """
    trained = card.get("voxel_nm")
    if trained is None:
        raise InputError(
            model_path, "the model card records no voxel size (an older model); retrain it"
        )
    rel = _voxel_differs(voxel_nm, trained, MODEL_VOXEL_TOLERANCE)
    if rel:
        t, v = _nm(trained), _nm(voxel_nm)
        raise InputError(
            tomogram_path,
            f"voxel size {v} nm differs by {100 * rel:.0f} % (more than "
            f"{100 * MODEL_VOXEL_TOLERANCE:g} %) from the {t} nm the model {model_path} was "
            f"trained at: its features are in voxels, so it would see another scale. Resample "
            f"the tomograms to one voxel size (config reconstruct.resample_to_nm: "
            f"{float(trained[0]):g}) or retrain with annotations at {v} nm",
        )


def run_predict(
    tomogram_path: PathLike,
    model_path: PathLike,
    out_labels: PathLike,
    out_uncertainty: PathLike | None = None,
    out_probabilities: PathLike | None = None,
    *,
    out_suggestions: PathLike | None = None,
    out_preview: PathLike | None = None,
    block: Sequence[int] = DEFAULTS["predict"]["block"],
    threads: int = 1,
    coarse: int | None = DEFAULTS["predict"]["coarse"],
    exact_probabilities: bool = DEFAULTS["predict"]["exact_probabilities"],
) -> None:
    """Segment a tomogram block-wise: features per block (with halo) classified at once.

    The tomogram's voxel size must be within :data:`MODEL_VOXEL_TOLERANCE` of the model's
    (:func:`check_model_voxel`).

    No feature store is needed, so memory is bounded by the block, not the tomogram.
    Writes labels (class values), uncertainty (1 − probability margin), optionally the
    probabilities as a zarr store (``probabilities``, float32, ``(classes, z, y, x)``, channels
    in ascending class value; attrs ``classes``, ``voxel_nm``) and the z-slices where one more
    annotation would help most (JSON). Voxels outside a reconstruction's field of view (the
    inscribed cylinder, ``meta["field_of_view"] == "cylinder"``) are 0 (no data).
    ``coarse`` (voxels, or None): coarse-to-fine, see :func:`sxtflow.segment.predict_volume`;
    only the features the model reads are computed. ``exact_probabilities``: every tree
    for every voxel (else a voxel leaves the forest once its label is decided, so the
    labels are the same and its probabilities are the mean of the trees evaluated, see
    :func:`sxtflow.segment.predict_volume`).
    """
    from .. import segment

    block = check_block(block)
    vol = io.read_volume(tomogram_path)
    io.check_lac(vol.data, tomogram_path)
    model, card = segment.load_model(model_path)
    check_model_voxel(card, vol.voxel_nm, tomogram_path, model_path)
    shape = vol.data.shape
    mask = field_of_view(vol)
    block = check_block(block, shape)  # a block beyond the volume is the whole volume
    _one_heap()  # peak memory: the threads' freed block arrays are shared
    with contextlib.ExitStack() as stack:
        # the uncertainty goes to a scratch store while the tomogram is in memory (file
        # writes, not resident memory); read back once the tomogram is dropped
        # (named as io.atomic_path's temporaries of the labels: a killed run's is removed)
        scratch = stack.enter_context(io.scratch_directory(out_labels))
        unc = io.create_zarr_array(scratch / "u.zarr", "uncertainty", shape, block)
        probs = None
        if out_probabilities:
            tmp = stack.enter_context(io.atomic_path(out_probabilities, directory=True))
            n_cls = len(card["classes"])
            probs = io.create_zarr_array(tmp, "probabilities", (n_cls, *shape), (n_cls, *block))
            probs.attrs.update({"classes": card["classes"], "voxel_nm": list(vol.voxel_nm)})
        labels, _ = segment.predict_volume(
            vol.data,
            model,
            card,
            block=block,
            n_jobs=threads,
            out_probabilities=probs,
            out_uncertainty=unc,
            mask=mask,
            coarse=coarse,
            exact_probabilities=exact_probabilities,
        )
        if probs is not None:
            io.seal_store(tmp)  # the completion record, written last
        voxel_nm = vol.voxel_nm
        meta = {"classes": card["classes"]}
        if "resampled_from" in vol.meta:
            meta["resampled_from"] = vol.meta["resampled_from"]
        del vol, model  # peak memory: the tomogram or the uncertainty, not both
        _release_freed_memory()
        # the labels are written while the uncertainty is read back (file writes,
        # decompression and numpy release the GIL)
        with _beside(threads, io.write_volume, out_labels, Volume(labels, voxel_nm, meta)):
            unc = np.asarray(unc[...], dtype=np.float32)
    # the uncertainty is written while the suggestions are computed from it
    with _beside(
        threads,
        io.write_volume if out_uncertainty else None,
        out_uncertainty,
        Volume(unc, voxel_nm, {"unit": "1 - probability margin"}),
    ):
        _predict_suggestions(unc, labels, card, voxel_nm, out_suggestions, out_preview)


def _predict_suggestions(unc, labels, card, voxel_nm, out_suggestions, out_preview) -> None:
    """:func:`run_predict`'s annotation suggestions (JSON) and uncertainty preview."""
    from .. import segment

    ice = card["classes"].get("ice", 0)
    # the classes the model saw least of draw the suggestions (segment.suggest_slices)
    trained = card.get("n_training_voxels") or {}
    have = {int(v): int(trained.get(c, 0)) for c, v in card["classes"].items()}
    slices = segment.suggest_slices(unc, labels, outside=(0, ice), annotated_voxels=have)
    if out_suggestions:
        mean = segment.slice_uncertainty(unc, labels, outside=(0, ice))
        io.write_json(
            out_suggestions,
            {
                "slices": [
                    {"z": int(z), "mean_uncertainty": round(float(mean[z]), 6), "score": s}
                    for z, s in slices
                ]
            },
        )
    if out_preview:
        from ..plot import uncertainty_preview

        uncertainty_preview(
            Volume(unc, voxel_nm), labels, out_preview, suggested_z=[z for z, _ in slices]
        )


@contextlib.contextmanager
def _beside(threads: int, fn, *args):
    """``fn(*args)`` on a thread beside the ``with`` body when ``threads`` > 1 (before it
    otherwise; nothing when ``fn`` is None); its error is raised after the body."""
    if fn is None:
        yield
        return
    if int(threads) <= 1:
        fn(*args)
        yield
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(fn, *args)
        yield
        done.result()


def run_refine(
    prediction_path: PathLike,
    out_labels: PathLike,
    *,
    classes: Mapping[str, int],
    rules: Mapping[str, Mapping] | None = None,
    tomogram_path: PathLike | None = None,
    threads: int = 1,
) -> None:
    """Per-class clean-up (debris, object count, holes) of a predicted label volume.

    ``rules`` default to the default rules (:mod:`sxtflow.options`) of the classes given.
    With ``boundary_um`` rules the tomogram (``tomogram_path``) is read too: object
    surfaces are placed where its LAC puts them and removed pieces take the neighbour
    most probable given their LAC and contact (:func:`sxtflow.refine.refine_labels`),
    ``threads`` objects at a time (the same result for any number).
    """
    from ..segment import refine_labels

    pred = io.read_volume(prediction_path)
    rules = _per_class(rules, DEFAULTS["refine"], classes)
    lac = None
    if tomogram_path and any((r or {}).get("boundary_um") for r in rules.values()):
        tomo = io.read_volume(tomogram_path)
        if tomo.data.shape != pred.data.shape:
            raise io.InputError(
                tomogram_path,
                f"tomogram shape {tomo.data.shape} differs from the prediction's {pred.data.shape}",
            )
        lac = np.asarray(tomo.data, dtype=np.float32)
    out = refine_labels(pred.data, classes, pred.spacing_um, rules, lac=lac, threads=threads)
    changed = int(np.count_nonzero(out != pred.data))
    log.info("refine: %d voxels relabelled (%.3f %%)", changed, 100.0 * changed / out.size)
    io.write_volume(out_labels, Volume(out, pred.voxel_nm, pred.meta))


def _glibc():
    """The C library if it is glibc (``mallopt``, ``malloc_trim``), else None."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def _one_heap() -> None:
    """Let every thread allocate from one C heap (glibc ``M_ARENA_MAX`` = 1).

    By default each prediction thread gets its own heap, and the block arrays it frees
    (features, filter passes: 4–30 MB each, below glibc's mmap threshold once that has
    grown) stay resident in it: each heap holds its own high-water mark. One heap reuses
    the same memory for both threads (same CPU time, measured; a fixed mmap threshold
    instead cost a third more CPU in page faults). A no-op where glibc is not the C library.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, 1)  # M_ARENA_MAX


def _release_freed_memory() -> None:
    """Give the C heap's freed memory back to the system (glibc ``malloc_trim``)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def run_evaluate(
    labels_path: PathLike,
    truth_path: PathLike,
    out: PathLike,
    *,
    classes: Mapping[str, int],
    sample: str,
    annotated: bool = False,
    labels=None,
    ignore: Sequence[int] = DEFAULTS["evaluate"]["ignore"],
) -> pd.DataFrame:
    """Dice/IoU per class of a segmentation against a validated truth
    (:func:`sxtflow.segment.read_truth`).

    Voxels without truth (0) and voxels of the ``ignore`` values are not scored; the table's
    ``n_ignored_voxels`` says how many were ignored.
    """
    from ..segment import dice_iou, read_truth

    pred = io.read_volume(labels_path)
    truth, n_ignored = read_truth(
        truth_path,
        classes,
        labels=labels,
        ignore=ignore,
        shape=pred.data.shape,
        voxel_nm=pred.voxel_nm,
        source=pred.meta.get("resampled_from"),
    )
    if n_ignored:
        log.info("%s: %d voxels of values %s not scored", truth_path, n_ignored, list(ignore))
    # voxels without truth (0: outside the sample, not segmented, ignored) are not scored
    scored = truth.data != 0
    table = dice_iou(np.where(scored, pred.data, 0), truth.data, dict(classes))
    table.insert(0, "sample", sample)
    table.insert(1, "annotated", bool(annotated))
    table["n_ignored_voxels"] = n_ignored
    io.write_table(out, table)
    return table
