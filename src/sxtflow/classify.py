"""Voxel classification from sparse annotations ("scribbles"), ilastik style.

A tree ensemble is trained on the features (:mod:`sxtflow.features`) of the annotated voxels
and applied block by block to whole volumes, so memory is bounded by the block size.

Annotations are ``(z, y, x)`` uint8 volumes in the label namespace of
:func:`sxtflow.labels.default_labels`; 0 means "not annotated". Predicted labels carry the same
class values.

The model card (a JSON-serialisable dict, saved next to the model) records what the model
expects and how well it cross-validated. It holds no timestamps, so training twice with the
same inputs and seed yields identical models, predictions and cards.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .features import FeatureSpec, block_features, iter_blocks
from .io import InputError, atomic_path, read_json, write_json
from .labels import UNLABELLED
from .progress import log, progress

__all__ = [
    "ESTIMATORS",
    "CLASS_WEIGHTS",
    "training_samples",
    "train",
    "save_model",
    "load_model",
    "predict",
    "predict_volume",
    "uncertainty",
    "slice_uncertainty",
    "suggest_slices",
]

ESTIMATORS = ("random_forest", "extra_trees", "hist_gradient_boosting")

#: Class weightings of forests (:func:`train`): the weight of a class's voxels ∝ ``n^-p``
#: for ``n`` training voxels of the class, ``p`` = 1, ½, 0.
CLASS_WEIGHTS = {"balanced": 1.0, "sqrt_balanced": 0.5, "none": 0.0}

_DEFAULT_BLOCK = (64, 64, 64)
_ROWS = 1 << 18  # voxels per classifier call in predict_volume (bounds its temporaries)

#: Every type a model file may contain ("module.Class"). Anything else is refused.
_ALLOWED_TYPES = frozenset(
    {
        # containers and scalars skops serialises
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "builtins.type",
        # numpy
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.bool_",
        "numpy.uint8",
        "numpy.int32",
        "numpy.int64",
        "numpy.uint32",
        "numpy.uint64",
        "numpy.float32",
        "numpy.float64",
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "numpy.random.mtrand.RandomState",
        # random forest / extra trees
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.tree._tree.Tree",
        # histogram gradient boosting
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn.preprocessing._label.LabelEncoder",
        "sklearn._loss.loss.HalfMultinomialLoss",
        "sklearn._loss.loss.HalfBinomialLoss",
        "sklearn._loss._loss.CyHalfMultinomialLoss",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn._loss.link.MultinomialLogit",
        "sklearn._loss.link.LogitLink",
        "sklearn._loss.link.Interval",
    }
)


# --------------------------------------------------------------------------- helpers


def _spatial_block(features, block) -> tuple[int, int, int]:
    """The block to iterate with: given, else the array's spatial chunks, else 64³."""
    if block is not None:
        return tuple(int(b) for b in block)
    chunks = getattr(features, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == 4 and all(isinstance(c, int) for c in chunks):
        return tuple(int(c) for c in chunks[1:])
    return _DEFAULT_BLOCK


def _stored_spec(features) -> dict | None:
    """The feature spec stored with a zarr feature array, if any."""
    attrs = getattr(features, "attrs", None)
    if attrs is None:
        return None
    try:
        spec = attrs.get("feature_spec")
    except Exception:  # attrs of unknown array types
        return None
    return dict(spec) if spec is not None else None


def _version_key(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def _sorted_classes(classes: dict) -> dict[str, int]:
    """Classes ordered by value (the order of probability channels)."""
    return dict(sorted(((str(k), int(v)) for k, v in classes.items()), key=lambda kv: kv[1]))


def _check_classes(classes: dict) -> dict[str, int]:
    if not isinstance(classes, dict) or len(classes) < 2:
        raise ValueError(f"need at least two classes as {{name: label value}}, got {classes!r}")
    out = {}
    for name, value in classes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"class {name!r}: label value must be an integer, got {value!r}")
        if not 1 <= int(value) <= 255:
            raise ValueError(
                f"class {name!r}: label value {value} must be in 1..255 (0 means unlabelled)"
            )
        out[str(name)] = int(value)
    values = list(out.values())
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        names = [n for n, v in out.items() if v in dupes]
        raise ValueError(f"classes {names} share label values {dupes}")
    return _sorted_classes(out)


# --------------------------------------------------------------------------- samples


def training_samples(features, annotation, *, path=None, block=None):
    """Collect the feature vectors of annotated voxels, reading only annotated blocks.

    Parameters
    ----------
    features : array-like, shape (F, z, y, x)
        Numpy or zarr array (see :func:`sxtflow.features.open_features`).
    annotation : array-like, shape (z, y, x), integer
        Label values; 0 (``UNLABELLED``) = not annotated.
    path : path-like, optional
        The annotation's file, used in error messages.
    block : tuple of 3 int, optional
        Block size to read; default the feature array's chunks (or 64³).

    Returns
    -------
    X : ndarray, shape (n, F), float32
        Features of the annotated voxels in C order of their position.
    y : ndarray, shape (n,), uint8
        Their label values.
    z_index : ndarray, shape (n,), int64
        Their z coordinate (for grouping cross-validation folds by slice).

    Raises
    ------
    InputError
        Shapes differ (the message gives both), non-integer or out-of-range values, or no
        annotated voxel at all.
    """
    ann = np.asarray(annotation)
    fshape = tuple(int(n) for n in features.shape)
    if len(fshape) != 4:
        raise InputError(path, f"features must be (F, z, y, x), got shape {fshape}")
    if ann.shape != fshape[1:]:
        raise InputError(
            path,
            f"annotation shape {tuple(ann.shape)} does not match features shape "
            f"{fshape[1:]} (z, y, x)",
        )
    if ann.dtype.kind not in "uib":
        raise InputError(path, f"annotation must hold integer label values, got {ann.dtype}")
    if ann.size and (ann.min() < 0 or ann.max() > 255):
        raise InputError(path, "annotation label values must be in 0..255")
    ann = ann.astype(np.uint8, copy=False)
    if not ann.any():
        raise InputError(path, "annotation has no labelled voxels (all values are 0)")
    n_feat = fshape[0]
    xs, ys, flat = [], [], []
    blocks = iter_blocks(ann.shape, _spatial_block(features, block))
    for core in blocks:
        a = ann[core]
        mask = a != UNLABELLED
        if not mask.any():
            continue
        fb = np.asarray(features[(slice(None), *core)], dtype=np.float32)
        xs.append(fb[:, mask].T)
        ys.append(a[mask])
        coords = [c + s.start for c, s in zip(np.nonzero(mask), core, strict=True)]
        flat.append(np.ravel_multi_index(coords, ann.shape))
    flat_idx = np.concatenate(flat)
    order = np.argsort(flat_idx, kind="stable")
    X = np.ascontiguousarray(np.concatenate(xs)[order], dtype=np.float32).reshape(-1, n_feat)
    y = np.concatenate(ys)[order]
    z_index = np.unravel_index(flat_idx[order], ann.shape)[0].astype(np.int64)
    if not np.isfinite(X).all():
        raise InputError(path, "features of annotated voxels contain NaN/inf values")
    return X, y, z_index


# --------------------------------------------------------------------------- training


def _class_weights(y: np.ndarray, classes: dict[str, int], power: float) -> dict[int, float]:
    """Per-class weights ∝ ``count^-power``, scaled so the mean voxel weight is 1."""
    counts = np.array([np.count_nonzero(y == v) for v in classes.values()], dtype=float)
    w = counts**-power
    w *= counts.sum() / float((w * counts).sum())
    return {int(v): float(x) for v, x in zip(classes.values(), w, strict=True)}


def _make_estimator(
    estimator, *, n_estimators, max_depth, min_samples_leaf, seed, n_jobs, class_weight="balanced"
):
    if estimator in ("random_forest", "extra_trees"):
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        cls = RandomForestClassifier if estimator == "random_forest" else ExtraTreesClassifier
        return cls(
            n_estimators=n_estimators,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            max_features="sqrt",
            class_weight=class_weight,
            random_state=seed,
            n_jobs=n_jobs,
        )
    if estimator == "hist_gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=n_estimators,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            early_stopping=False,  # balanced by subsampling in train(): weights are slow here
            random_state=seed,
        )
    raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")


def _z_bands(z_index: np.ndarray, k: int) -> np.ndarray:
    """Group voxels into ``k`` contiguous bands of annotated z-slices (CV groups).

    Neighbouring slices share smoothed features, so folds are whole bands of slices rather
    than interleaved slices.
    """
    slices = np.unique(z_index)
    bands = np.array_split(slices, min(k, slices.size))
    group_of = np.empty(int(slices.max()) + 1, dtype=np.int64)
    for g, band in enumerate(bands):
        group_of[band] = g
    return group_of[z_index]


def _cross_validate(make, X, y, groups, scheme, classes, cv_folds) -> dict:
    from sklearn.base import clone
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    from sklearn.model_selection import GroupKFold

    n_groups = int(np.unique(groups).size)
    if cv_folds < 2 or n_groups < 2:
        reason = "disabled" if cv_folds < 2 else f"only one {scheme} group annotated"
        return {"scheme": scheme, "skipped": reason, "n_groups": n_groups}
    k = min(int(cv_folds), n_groups)
    pred = np.zeros_like(y)
    fold_acc = []
    for train_idx, test_idx in GroupKFold(n_splits=k).split(X, y, groups):
        m = clone(make).fit(X[train_idx], y[train_idx])
        pred[test_idx] = m.predict(X[test_idx])
        fold_acc.append(round(float(accuracy_score(y[test_idx], pred[test_idx])), 6))
    values = list(classes.values())
    f1 = f1_score(y, pred, labels=values, average=None, zero_division=0)
    return {
        "scheme": scheme,
        "n_splits": k,
        "n_groups": n_groups,
        "accuracy": round(float(accuracy_score(y, pred)), 6),
        "balanced_accuracy": round(float(balanced_accuracy_score(y, pred)), 6),
        "f1": {name: round(float(f), 6) for name, f in zip(classes, f1, strict=True)},
        "fold_accuracy": fold_acc,
    }


def _check_skill(cv: dict, n_classes: int, min_skill: float, where) -> None:
    """Record the CV skill (adjusted balanced accuracy) in ``cv``; refuse one at chance."""
    if "balanced_accuracy" not in cv:
        return
    chance = 1.0 / n_classes
    skill = (cv["balanced_accuracy"] - chance) / (1.0 - chance)
    cv["skill"] = round(float(skill), 6)
    if skill < min_skill:
        raise InputError(
            where,
            f"cross-validated balanced accuracy {cv['balanced_accuracy']:.3f} is at chance "
            f"level for {n_classes} classes (chance {chance:.3f}; skill {skill:.2f} < "
            f"{min_skill:g}): the features do not separate the annotated classes. Check that "
            "features and annotations are of the same tomogram and grid and that no feature "
            "store is damaged, annotate more; the model was not written "
            "(train.min_cv_skill sets the bar)",
        )


def train(
    samples,
    classes: dict[str, int],
    *,
    spec: FeatureSpec,
    n_estimators: int = 100,
    max_depth: int | None = 18,
    min_samples_leaf: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    max_per_class: int | None = 50000,
    estimator: str = "random_forest",
    cv_folds: int = 3,
    class_weight: str = "balanced",
    min_cv_skill: float = 0.0,
    where: str | None = None,
):
    """Train a voxel classifier on sparse annotations.

    Parameters
    ----------
    samples : list of (features, annotation) or (features, annotation, path)
        ``features`` (F, z, y, x) numpy/zarr arrays computed with ``spec``; ``annotation``
        (z, y, x) integer label values, 0 = unlabelled; ``path`` (optional) names the
        annotation in error messages. One entry per tomogram.
    classes : dict of str to int
        Class name → label value (1..255), e.g. ``{"ice": 1, "cytoplasm": 2}``.
    spec : FeatureSpec
        The spec the features were computed with (recorded in the card).
    n_estimators : int
        Trees (forests) or boosting iterations (``hist_gradient_boosting``).
    max_depth : int or None
        Tree depth limit; 18 keeps trees small and prediction fast at no measurable loss.
    min_samples_leaf : int
        Minimum training voxels per leaf.
    seed : int
        Random seed: subsampling, tree randomisation and CV are deterministic under it.
    n_jobs : int
        Threads for forest training.
    max_per_class : int or None
        At most this many voxels per class are used (random subsample). Forests handle the
        remaining imbalance with ``class_weight="balanced"``; ``hist_gradient_boosting``
        is balanced by subsampling every class to the smallest class's count.
    estimator : {"random_forest", "extra_trees", "hist_gradient_boosting"}
    cv_folds : int
        Folds of grouped cross-validation (``GroupKFold``): groups are tomograms when at
        least two are annotated, else contiguous bands of annotated z-slices. ``< 2``
        disables it.
    class_weight : {"balanced", "sqrt_balanced", "none"}
        Forests only: the weight of each class's voxels, ∝ ``1/n`` (every class weighs
        the same in total), ``1/√n`` or 1 for ``n`` training voxels of the class (after
        ``max_per_class``). Annotations traced on both sides of boundaries
        (``simulate.annotate(rim=True)``) want ``"sqrt_balanced"``: with ``"balanced"`` a
        class with few voxels (mitochondria, droplets) claims the ambiguous rim voxels
        and grows by a partial-volume shell (``docs/segmentation.md``).
        ``hist_gradient_boosting`` is always balanced by subsampling.
    min_cv_skill : float
        Refuse a model whose cross-validated skill, ``(balanced accuracy − 1/K) / (1 − 1/K)``
        for ``K`` classes (scikit-learn's adjusted balanced accuracy: 0 at chance, 1 perfect),
        is below this; checked before the final fit. A model at chance means the features do
        not separate the annotated classes (features of another tomogram or grid, a damaged
        feature store). 0 (default here; the pipeline uses 0.2) disables the check, as does
        cross-validation being skipped.
    where : str, optional
        Names the annotations in that error.

    Returns
    -------
    model : fitted scikit-learn classifier
        ``model.classes_`` are the label values in ascending order.
    card : dict
        ``sxtflow_version``, ``sklearn_version``, ``classes`` {name: value} (ascending value,
        the probability channel order), ``feature_spec``, ``feature_names``, ``estimator``,
        ``n_estimators``, ``max_depth``, ``min_samples_leaf``, ``max_per_class``,
        ``balancing`` ("class_weight" or "subsample"), ``class_weight`` and
        ``class_weights`` {name: weight} (forests), ``seed``,
        ``n_tomograms``, ``n_training_voxels`` {name: annotated voxels},
        ``n_used_voxels`` {name: voxels after subsampling}, ``cv`` (see
        ``cv_folds``: ``scheme``, ``n_splits``, ``n_groups``, ``accuracy``,
        ``balanced_accuracy``, ``f1`` {name: F1}, ``fold_accuracy``; or ``skipped``).

    Raises
    ------
    InputError
        An annotation is empty, has the wrong shape, or holds values that are not classes;
        features do not match ``spec``.
    ValueError
        A class has no labelled voxels in any annotation; bad ``classes``/``estimator``.
    """
    classes = _check_classes(classes)
    forest = _check_estimator(estimator, class_weight)
    samples = _sample_list(samples)
    X, y, z, tomo, last = _stack_samples(samples, classes, spec)
    counts = _class_counts(y, classes)
    X, y, z, tomo = _subsample(X, y, z, tomo, classes, counts, estimator, max_per_class, seed)
    used = {name: int(np.count_nonzero(y == v)) for name, v in classes.items()}
    # "balanced" is passed as sklearn's own string (the same weights; models trained before
    # this option are unchanged), the others as explicit per-class weights
    weights = _class_weights(y, classes, CLASS_WEIGHTS[class_weight]) if forest else None
    model = _make_estimator(
        estimator,
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        seed=seed,
        n_jobs=n_jobs,
        class_weight="balanced" if class_weight == "balanced" else weights,
    )
    groups, scheme = _cv_groups(tomo, z, cv_folds)
    cv = _cross_validate(model, X, y, groups, scheme, classes, cv_folds)
    _check_skill(cv, len(classes), min_cv_skill, where if where is not None else last)
    log.info("training %s on %d voxels (%s)", estimator, y.size, used)
    model.fit(X, y)
    card = _model_card(
        spec,
        classes,
        estimator=estimator,
        n_estimators=n_estimators,
        max_depth=max_depth,
        min_samples_leaf=min_samples_leaf,
        max_per_class=max_per_class,
        class_weight=class_weight,
        weights=weights,
        seed=seed,
        n_tomograms=len(samples),
        counts=counts,
        used=used,
        cv=cv,
    )
    return model, card


def _check_estimator(estimator: str, class_weight: str) -> bool:
    """Whether ``estimator`` is a forest; unknown names or an unbalanced booster are refused."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {', '.join(ESTIMATORS)}")
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(
            f"unknown class_weight {class_weight!r}; choose one of {', '.join(CLASS_WEIGHTS)}"
        )
    forest = estimator != "hist_gradient_boosting"
    if not forest and class_weight != "balanced":
        raise ValueError(
            "hist_gradient_boosting is balanced by subsampling; class_weight must be 'balanced'"
        )
    return forest


def _sample_list(samples) -> list:
    """``samples`` as a list of (features, annotation[, path]); one tuple is one tomogram."""
    if isinstance(samples, tuple) and len(samples) in (2, 3) and hasattr(samples[0], "shape"):
        samples = [samples]
    samples = list(samples)
    if not samples:
        raise InputError(None, "no annotated tomograms given for training")
    return samples


def _stack_samples(samples: list, classes: dict[str, int], spec: FeatureSpec):
    """Training voxels of every tomogram: ``(X, y, z, tomogram, where)``.

    ``where`` names the last annotation (for errors when the caller names none). Features
    that do not match ``spec`` and annotation values that are not classes are refused.
    """
    Xs, ys, zs, tomo = [], [], [], []
    where = None
    for i, sample in enumerate(samples):
        if len(sample) == 3:
            features, annotation, path = sample
        else:
            (features, annotation), path = sample, None
        where = path if path is not None else f"annotation #{i}"
        if int(features.shape[0]) != spec.n_features:
            raise InputError(
                where,
                f"features have {features.shape[0]} channels but the feature spec has "
                f"{spec.n_features}",
            )
        stored = _stored_spec(features)
        if stored is not None and stored != spec.to_dict():
            raise InputError(where, f"features were computed with {stored}, not {spec.to_dict()}")
        X, y, z = training_samples(features, annotation, path=where)
        unknown = sorted(set(np.unique(y).tolist()) - set(classes.values()))
        if unknown:
            raise InputError(
                where,
                f"annotation values {unknown} are not classes "
                f"({', '.join(f'{n}={v}' for n, v in classes.items())})",
            )
        Xs.append(X)
        ys.append(y)
        zs.append(z)
        tomo.append(np.full(y.size, i, dtype=np.int64))
    X, y, z, tomo = (np.concatenate(a) for a in (Xs, ys, zs, tomo))
    return X, y, z, tomo, where


def _class_counts(y: np.ndarray, classes: dict[str, int]) -> dict[str, int]:
    """Annotated voxels per class; a class without any is an error."""
    counts = {name: int(np.count_nonzero(y == v)) for name, v in classes.items()}
    missing = [f"{n!r} (value {classes[n]})" for n, c in counts.items() if c == 0]
    if missing:
        raise ValueError(
            f"class {', '.join(missing)} has no labelled voxels in any annotation; "
            "annotate it or drop it from the classes"
        )
    return counts


def _subsample(X, y, z, tomo, classes, counts, estimator, max_per_class, seed):
    """At most ``max_per_class`` voxels per class, drawn deterministically under ``seed``.

    Forests balance the rest with class weights, while gradient boosting (whose sample-weight
    path is ~10x slower) is balanced here exactly (every class cut to the smallest's count).
    """
    cap = np.inf if max_per_class is None else int(max_per_class)
    if estimator == "hist_gradient_boosting":
        cap = min(cap, min(counts.values()))
    rng = np.random.default_rng(seed)
    keep = []
    for v in classes.values():
        idx = np.flatnonzero(y == v)
        if idx.size > cap:
            idx = np.sort(rng.choice(idx, size=int(cap), replace=False))
        keep.append(idx)
    keep = np.sort(np.concatenate(keep))
    return X[keep], y[keep], z[keep], tomo[keep]


def _cv_groups(tomo: np.ndarray, z: np.ndarray, cv_folds: int) -> tuple[np.ndarray, str]:
    """Cross-validation groups: tomograms when two or more, else bands of z-slices."""
    if int(np.unique(tomo).size) >= 2:
        return tomo, "tomogram"
    return _z_bands(z, max(int(cv_folds), 2)), "z_slice_band"


def _model_card(spec, classes, *, estimator, n_estimators, max_depth, min_samples_leaf,
                max_per_class, class_weight, weights, seed, n_tomograms, counts, used, cv):  # fmt: skip
    """The model card :func:`train` returns (see there)."""
    import sklearn

    return {
        "sxtflow_version": __version__,
        "sklearn_version": sklearn.__version__,
        "classes": dict(classes),
        "feature_spec": spec.to_dict(),
        "feature_names": spec.names(),
        "estimator": estimator,
        "n_estimators": int(n_estimators),
        "max_depth": None if max_depth is None else int(max_depth),
        "min_samples_leaf": int(min_samples_leaf),
        "max_per_class": None if max_per_class is None else int(max_per_class),
        "balancing": ("subsample" if estimator == "hist_gradient_boosting" else "class_weight"),
        "class_weight": class_weight,
        "class_weights": (
            None if weights is None else {name: round(weights[v], 6) for name, v in classes.items()}
        ),
        "seed": int(seed),
        "n_tomograms": int(n_tomograms),
        "n_training_voxels": counts,
        "n_used_voxels": used,
        "cv": cv,
    }


# --------------------------------------------------------------------------- persistence


def save_model(path: str | os.PathLike, model, card: dict) -> Path:
    """Save a model (skops format) and its card (``path.with_suffix(".json")``) atomically.

    Parameters
    ----------
    path : path-like
        Target file; must end in ``.skops``.
    model : fitted classifier from :func:`train`
    card : dict from :func:`train`

    Returns
    -------
    Path
        The model path.
    """
    import skops.io as sio

    path = Path(path)
    if path.suffix != ".skops":
        raise ValueError(f"model path must end in .skops, got {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(deterministic_skops(sio.dumps(model)))
    write_json(path.with_suffix(".json"), card)
    return path


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def _zero_padding(array: np.ndarray) -> np.ndarray:
    """A structured array copied field by field into zeros, so its padding bytes are 0
    (scikit-learn's tree nodes carry 7 bytes of uninitialised padding each)."""
    if array.dtype.fields is None:
        return array
    out = np.zeros(array.shape, dtype=array.dtype)
    for name in array.dtype.names:
        out[name] = array[name]
    return out


def deterministic_skops(raw: bytes) -> bytes:
    """The same skops archive, byte-identical whenever the model is.

    skops names array members and memo ids after ``id()`` (memory addresses), stamps members
    with the current time and saves structured arrays with their uninitialised padding. Here
    ids and member names are renumbered in order of first appearance (a bijection, so shared
    objects stay shared), every member gets the zip epoch as its time, and padding is zeroed.
    The result loads with ``skops.io.load`` to an equal model.
    """
    import io as _io

    src = zipfile.ZipFile(_io.BytesIO(raw))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}
    files: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    node[key] = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str) and value.endswith(".npy"):
                    node[key] = files.setdefault(value, f"{len(files)}.npy")
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    names = set(src.namelist()) - {"schema.json"}
    if names != set(files):
        raise ValueError(
            f"skops archive members {sorted(names ^ set(files))} are not in its schema"
        )
    out = _io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
        for old, new in files.items():
            data = src.read(old)
            array = np.load(_io.BytesIO(data), allow_pickle=False)
            if array.dtype.fields is not None:
                buf = _io.BytesIO()
                np.save(buf, _zero_padding(array), allow_pickle=False)
                data = buf.getvalue()
            dst.writestr(zipfile.ZipInfo(new, date_time=_ZIP_EPOCH), data)
        dst.writestr(
            zipfile.ZipInfo("schema.json", date_time=_ZIP_EPOCH), json.dumps(schema, indent=2)
        )
    return out.getvalue()


def _schema_types(path: Path) -> set[str]:
    """All ``module.Class`` names recorded in a skops file's schema."""
    with zipfile.ZipFile(path) as zf:
        schema = json.loads(zf.read("schema.json"))
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return found


def load_model(path: str | os.PathLike, *, spec: FeatureSpec | None = None):
    """Load a model saved by :func:`save_model`, trusting only known scikit-learn types.

    Parameters
    ----------
    path : path-like
        The ``.skops`` file; its card is ``path.with_suffix(".json")``.
    spec : FeatureSpec, optional
        If given, the card's feature spec must equal it.

    Returns
    -------
    model : classifier
    card : dict
        ``card["classes"]`` ordered by ascending value (the probability channel order).

    Raises
    ------
    InputError
        Missing file or card, not a skops file, a type outside the allow-list (named),
        a different feature spec, or a card from another sxtflow major.minor version.
    """
    import skops.io as sio
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file does not exist")
    try:
        untrusted = list(sio.get_untrusted_types(file=path))
        found = _schema_types(path)
    except Exception as exc:
        raise InputError(path, f"not a skops model file ({type(exc).__name__}: {exc})") from exc
    refused = sorted((set(untrusted) | found) - _ALLOWED_TYPES)
    if refused:
        raise InputError(path, f"refusing to load untrusted types: {', '.join(refused)}")
    try:
        model = sio.load(path, trusted=untrusted)
    except Exception as exc:
        raise InputError(path, f"cannot load model ({type(exc).__name__}: {exc})") from exc
    if not isinstance(
        model, RandomForestClassifier | ExtraTreesClassifier | HistGradientBoostingClassifier
    ):
        raise InputError(path, f"not a supported classifier: {type(model).__name__}")
    card_path = path.with_suffix(".json")
    card = read_json(card_path)
    needed = {"sxtflow_version", "classes", "feature_spec", "feature_names"}
    if not isinstance(card, dict) or needed - set(card):
        raise InputError(card_path, f"model card lacks {sorted(needed - set(card or {}))}")
    if _version_key(card["sxtflow_version"]) != _version_key(__version__):
        raise InputError(
            path,
            f"model trained with sxtflow {card['sxtflow_version']}, this is {__version__}; "
            "retrain it",
        )
    try:
        card_spec = FeatureSpec.from_dict(card["feature_spec"])
        classes = _check_classes(card["classes"])
    except ValueError as exc:
        raise InputError(card_path, str(exc)) from exc
    if spec is not None and card_spec != spec:
        raise InputError(
            path,
            f"model expects features {card_spec.to_dict()} but the configured spec is "
            f"{spec.to_dict()}",
        )
    if list(card["feature_names"]) != card_spec.names():
        raise InputError(card_path, "feature_names do not match feature_spec")
    model_classes = [int(c) for c in model.classes_]
    if model_classes != list(classes.values()):
        raise InputError(
            path, f"model predicts {model_classes} but its card lists {list(classes.values())}"
        )
    if getattr(model, "n_features_in_", card_spec.n_features) != card_spec.n_features:
        raise InputError(path, "model and card disagree on the number of features")
    card = dict(card)
    card["classes"] = classes
    return model, card


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


def _conv_at(a: np.ndarray, kernel: np.ndarray, axis: int, pos: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.convolve1d(a, kernel, axis)`` evaluated only at indices ``pos``.

    One matrix product with the banded ``(len(pos), a.shape[axis])`` matrix of the taps
    (BLAS; ``pos`` must lie at least the kernel radius inside the axis).
    """
    r = (len(kernel) - 1) // 2
    n = a.shape[axis]
    band = np.zeros((len(pos), n), dtype=np.float32)
    rows = np.arange(len(pos))
    for j, w in enumerate(kernel):  # convolution: out[i] = Σ_j k[j] · a[pos_i − (j − r)]
        band[rows, np.asarray(pos) - (j - r)] = w
    # single 2D products only: OpenBLAS is very slow on many small batched ones
    if axis == 0:
        return (band @ a.reshape(n, -1)).reshape(len(pos), *a.shape[1:])
    if axis == a.ndim - 1:
        return (a.reshape(-1, n) @ band.T).reshape(*a.shape[:-1], len(pos))
    moved = np.moveaxis(a, axis, 0)
    out = band @ np.ascontiguousarray(moved).reshape(n, -1)
    return np.moveaxis(out.reshape(len(pos), *moved.shape[1:]), 0, axis)


def _lattice_features(volume, spec: FeatureSpec, zpos, ypos, xpos) -> np.ndarray:
    """Features of ``spec`` at the lattice points ``zpos × ypos × xpos`` of ``volume``.

    Equal to :func:`sxtflow.features.block_features` at those voxels up to float32
    rounding (the same separable Gaussian-derivative kernels, evaluated only where
    needed). Families: raw, gaussian, log, ggm, dog, hessian (not the structure tensor).

    Returns
    -------
    ndarray, shape (F, len(zpos), len(ypos), len(xpos)), float32
    """
    from .features import _DOG_RATIO, _FIRST, _SECOND, _read_padded, eigvalsh3, gaussian_kernel

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
        zs, zxs, res = {}, {}, {}
        for o in orders:
            if o[0] not in zs:
                zs[o[0]] = _conv_at(padded, gaussian_kernel(sigma, o[0]), 0, pz)
            if (o[0], o[2]) not in zxs:
                zxs[o[0], o[2]] = _conv_at(zs[o[0]], gaussian_kernel(sigma, o[2]), 2, px)
            res[o] = _conv_at(zxs[o[0], o[2]], gaussian_kernel(sigma, o[1]), 1, py)
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
        Lattice planes computed at a time (bounds memory).

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
    for i0 in progress(range(0, len(zpos), slab), -(-len(zpos) // slab), "coarse"):
        zp = zpos[i0 : i0 + slab]
        # one BLAS thread: multi-threaded OpenBLAS spins on these small products
        with threadpool_limits(limits=1, user_api="blas"):
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
    return out


def fine_cells(
    coarse_probabilities: np.ndarray,
    *,
    confident: float = 0.9,
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
        confident (> 0.5, so that the most probable class is unique).
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


def _upsample(cells: np.ndarray, stride: int, box: tuple[slice, ...]) -> np.ndarray:
    """Lattice-cell values over the voxels of ``box`` (each voxel takes its cell's value)."""
    idx = [np.arange(s.start, s.stop) // stride for s in box]
    return cells[..., idx[0][:, None, None], idx[1][None, :, None], idx[2][None, None, :]]


def _class_columns(model, card: dict) -> tuple[np.ndarray, np.ndarray]:
    """Class values (ascending) and the model's probability column of each."""
    classes = _sorted_classes(card["classes"])
    values = np.array(list(classes.values()), dtype=np.uint8)
    model_classes = [int(c) for c in model.classes_]
    missing = [int(v) for v in values if int(v) not in model_classes]
    if missing:
        raise ValueError(f"model cannot predict class values {missing} listed in its card")
    return values, np.array([model_classes.index(int(v)) for v in values])


def _margin(proba: np.ndarray) -> np.ndarray:
    """``1 − (p_max − p_second)`` along axis 0 of ``(C, …)`` probabilities, float32."""
    if proba.shape[0] < 2:
        return np.zeros(proba.shape[1:], dtype=np.float32)
    top2 = np.partition(proba, proba.shape[0] - 2, axis=0)[-2:]
    return np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0).astype(np.float32)


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
    coarse_confident: float = 0.9,
    coarse_margin: int = 1,
    coarse_classes=("ice",),
    feature_subset: bool = True,
):
    """Segment a tomogram directly: features per block (with halo), classified at once.

    No feature store is needed: each block's features (``card["feature_spec"]``) are
    computed from the block grown by the spec's halo, classified and dropped, so memory is
    bounded by the block size and the number of threads, not by the volume size. Results
    equal :func:`predict` on :func:`sxtflow.features.compute_features` of the volume.

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
        confident (:func:`fine_cells`).
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
    >>> from sxtflow.features import compute_features
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
    cells = coarse_p = None
    stride = int(coarse or 0)
    if stride > 1 and region == _check_region(None, shape):
        cells, coarse_p = _coarse_cells(
            volume, model, card, sub, sub_cols, spec.n_features, stride=stride, mask=mask,
            n_jobs=n_jobs,
            confident=coarse_confident, margin=coarse_margin, classes=coarse_classes,
        )  # fmt: skip
    blocks = iter_blocks(shape, block)

    def work(core):  # ``core`` indexes the outputs; ``at`` the volume
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
        if fine.any():
            # only the box holding the voxels to classify (features there equal the
            # whole-volume ones exactly: each box reads its own halo from the volume)
            box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(fine))
            box_at = tuple(
                slice(a.start + b.start, a.start + b.stop) for a, b in zip(at, box, strict=True)
            )
            pbox = proba[(slice(None), *box)]
            pbox[:, fine[box]] = _classify_box(
                volume, box_at, fine[box], model, columns, sub, sub_cols, spec.n_features
            )
        lab = values[np.argmax(proba, axis=0)]
        if m is not None:
            lab[~m] = 0
            proba[:, ~m] = 0.0
        outs.write(core, lab, proba)

    _run_blocks(work, blocks, model, n_jobs)
    return out_labels, out_probabilities


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
    old = getattr(model, "n_jobs", None)
    if old is not None:
        model.n_jobs = int(n_jobs)
    try:
        coarse_p = coarse_pass(
            volume,
            model,
            card,
            stride=stride,
            mask=mask,
            spec=sub,
            columns=np.arange(n_features) if sub_cols is None else sub_cols,
        )
    finally:
        if old is not None:
            model.n_jobs = old
    cells = fine_cells(coarse_p, confident=confident, margin=margin, coarse_channels=channels)
    log.info(
        "coarse pass (every %d-th voxel): %.1f %% of the lattice cells at full resolution",
        stride,
        100.0 * cells.mean(),
    )
    return cells, coarse_p


def _classify_box(volume, box_at, fine, model, columns, sub, sub_cols, n_features):
    """Probabilities ``(C, n)`` of the ``fine`` voxels of one box of the volume, from the
    box's features (read with their halo), the classifier's input in pieces of ``_ROWS``."""
    flat = block_features(volume, box_at, sub).reshape(sub.n_features, -1)
    idx = np.flatnonzero(fine.ravel())
    pf = np.empty((len(columns), idx.size), dtype=np.float32)
    for i in range(0, idx.size, _ROWS):
        j = idx[i : i + _ROWS]
        if sub_cols is None:
            X = np.ascontiguousarray(flat[:, j].T)
        else:  # columns the model never reads stay 0
            X = np.zeros((j.size, n_features), dtype=np.float32)
            X[:, sub_cols] = flat[:, j].T
        pf[:, i : i + j.size] = model.predict_proba(X)[:, columns].T
        del X
    return pf


def _run_blocks(work, blocks, model, n_jobs: int) -> None:
    """``work(block)`` for every block, on ``n_jobs`` threads (the model on one each)."""
    from concurrent.futures import ThreadPoolExecutor

    old_jobs = getattr(model, "n_jobs", None)
    if old_jobs is not None:
        model.n_jobs = 1  # parallel over blocks instead
    try:
        if int(n_jobs) == 1:
            for core in progress(blocks, len(blocks), "segment"):
                work(core)
        else:
            with ThreadPoolExecutor(int(n_jobs)) as pool:
                for _ in progress(pool.map(work, blocks), len(blocks), "segment"):
                    pass
    finally:
        if old_jobs is not None:
            model.n_jobs = old_jobs


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


def uncertainty(probabilities, *, slab: int = 16) -> np.ndarray:
    """Margin uncertainty ``1 − (p_max − p_second)`` per voxel.

    0 = one class is certain; 1 = the two most probable classes tie. (The margin, not the
    entropy: it is what matters for where to add annotations, and is independent of how
    the remaining probability is spread over unlikely classes.)

    Parameters
    ----------
    probabilities : array-like, shape (C, z, y, x)
        Class probabilities (numpy or zarr), e.g. from :func:`predict`.
    slab : int
        z-slices processed at a time (bounds memory).

    Returns
    -------
    ndarray, shape (z, y, x), float32, values in [0, 1]
    """
    shape = tuple(int(n) for n in probabilities.shape)
    if len(shape) != 4:
        raise ValueError(f"probabilities must be (C, z, y, x), got shape {shape}")
    out = np.zeros(shape[1:], dtype=np.float32)
    if shape[0] < 2:
        return out
    for z0 in range(0, shape[1], slab):
        p = np.asarray(probabilities[:, z0 : z0 + slab], dtype=np.float32)
        top2 = np.partition(p, shape[0] - 2, axis=0)[-2:]
        out[z0 : z0 + slab] = np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0)
    return out


def slice_uncertainty(uncertainty_map, labels, *, outside: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """Mean uncertainty per z-slice inside the cell.

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float
        Per-voxel uncertainty in [0, 1] (from :func:`uncertainty` or :func:`predict_volume`).
    labels : array-like, shape (z, y, x), integer
        Predicted class values; voxels whose value is in ``outside`` are not the cell.
    outside : tuple of int
        Values that are not the cell: 0 (no data) and the ice class value (1 in the default
        label table).

    Returns
    -------
    ndarray, shape (z,), float64
        Mean uncertainty over the cell's voxels of each slice; NaN where a slice has none.

    Examples
    --------
    >>> unc = np.zeros((3, 2, 2), np.float32); unc[1] = 0.5
    >>> lab = np.full((3, 2, 2), 2, np.uint8); lab[2] = 1
    >>> slice_uncertainty(unc, lab).round(2).tolist()
    [0.0, 0.5, nan]
    """
    unc = np.asarray(uncertainty_map)
    lab = np.asarray(labels)
    if unc.shape != lab.shape or unc.ndim != 3:
        raise ValueError(
            f"uncertainty {unc.shape} and labels {lab.shape} must be the same (z, y, x) shape"
        )
    out = np.full(unc.shape[0], np.nan)
    for z in range(unc.shape[0]):
        inside = ~np.isin(lab[z], outside)
        if inside.any():
            out[z] = float(unc[z][inside].mean(dtype=np.float64))
    return out


def suggest_slices(
    uncertainty_map,
    labels,
    *,
    n: int = 5,
    min_gap: int = 3,
    annotated=None,
    outside: tuple[int, ...] = (0, 1),
) -> list[tuple[int, float]]:
    """The z-slices where one more annotation would help most.

    Ranks slices by their mean uncertainty inside the cell (:func:`slice_uncertainty`)
    and picks the most uncertain ones at least ``min_gap`` slices apart (neighbouring
    slices share smoothed features, so annotating two adjacent ones teaches little more),
    skipping slices that are already annotated.

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float in [0, 1]
    labels : array-like, shape (z, y, x), integer class values
    n : int
        Number of slices to suggest (fewer if the cell spans fewer slices).
    min_gap : int
        Minimum distance in slices between suggestions and to annotated slices.
    annotated : array-like, shape (z, y, x), optional
        Existing annotation (0 = not annotated): its slices are not suggested again.
    outside : tuple of int
        Label values that are not the cell (0 and ice).

    Returns
    -------
    list of (int, float)
        ``(z index, mean uncertainty inside the cell)``, most uncertain first.

    Examples
    --------
    >>> unc = np.zeros((10, 4, 4), np.float32); unc[2] = 0.9; unc[3] = 0.8; unc[7] = 0.5
    >>> lab = np.full((10, 4, 4), 2, np.uint8)
    >>> [z for z, _ in suggest_slices(unc, lab, n=2, min_gap=2)]
    [2, 7]
    """
    if n < 1 or min_gap < 1:
        raise ValueError(f"n and min_gap must be ≥ 1, got n={n}, min_gap={min_gap}")
    score = slice_uncertainty(uncertainty_map, labels, outside=outside)
    taken: list[int] = []
    if annotated is not None:
        ann = np.asarray(annotated)
        if ann.shape != score.shape + tuple(np.shape(labels)[1:]):
            raise ValueError(f"annotation shape {ann.shape} differs from {np.shape(labels)}")
        taken = [int(z) for z in np.flatnonzero(ann.reshape(ann.shape[0], -1).any(axis=1))]
    out: list[tuple[int, float]] = []
    for z in np.argsort(np.where(np.isnan(score), -np.inf, score), kind="stable")[::-1]:
        if len(out) >= n or np.isnan(score[z]):
            break
        if all(abs(int(z) - t) >= min_gap for t in taken):
            out.append((int(z), round(float(score[z]), 6)))
            taken.append(int(z))
    return out
