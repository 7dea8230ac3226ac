"""Training the voxel classifier on sparse annotations: samples, estimators, grouped
cross-validation and the at-chance guard (:func:`train`).
"""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..io import InputError
from ..labels import UNLABELLED
from ..progress import log
from ._features import FeatureSpec, iter_blocks
from ._model import _check_classes, _spatial_block, _stored_spec
from ._outlines import fill_outlines as _fill_outlines

ESTIMATORS = ("random_forest", "extra_trees", "hist_gradient_boosting")

#: Class weightings of forests (:func:`train`): the weight of a class's voxels ∝ ``n^-p``
#: for ``n`` training voxels of the class, ``p`` = 1, ½, 0.
CLASS_WEIGHTS = {"balanced": 1.0, "sqrt_balanced": 0.5, "none": 0.0}

# --------------------------------------------------------------------------- samples


def training_samples(features, annotation, *, path=None, block=None):
    """Collect the feature vectors of annotated voxels, reading only annotated blocks.

    Parameters
    ----------
    features : array-like, shape (F, z, y, x)
        Numpy or zarr array (see :func:`sxtflow.segment.open_features`).
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
    fill_outlines: bool = True,
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
    fill_outlines : bool
        Fill each class's closed outlines whose inside is unannotated with the class before
        training (:func:`fill_outlines`, on every annotated plane of each axis), so an
        annotator who traced outlines teaches the objects, not their edges. An outline that
        holds other classes (the cell traced as cytoplasm around unannotated organelles)
        is filled only where no other class's outlined object reaches and where the
        tomogram (the Gaussian channel of ``spec`` nearest 1 voxel) looks like the rest of
        its inside. Strokes painted inside objects, arcs and whole slices enclose (almost)
        nothing and are (almost) unchanged (``docs/segmentation.md``, "Robustness suite").
        The voxels filled per class are logged and recorded in the card.
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
        ``n_used_voxels`` {name: voxels after subsampling}, ``fill_outlines``,
        ``filled_voxels`` {name: voxels filled inside outlines}, ``cv`` (see
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
    X, y, z, tomo, last, filled = _stack_samples(samples, classes, spec, fill_outlines)
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
    card["fill_outlines"] = bool(fill_outlines)
    card["filled_voxels"] = filled
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


def _stack_samples(samples: list, classes: dict[str, int], spec: FeatureSpec, fill=False):
    """Training voxels of every tomogram: ``(X, y, z, tomogram, where, filled)``.

    ``where`` names the last annotation (for errors when the caller names none); with
    ``fill`` closed outlines are filled first (:func:`fill_outlines`), ``filled`` is the
    voxels filled per class name (summed over the tomograms). Features that do not match
    ``spec`` and annotation values that are not classes are refused.
    """
    Xs, ys, zs, tomo = [], [], [], []
    where = None
    names = {v: n for n, v in classes.items()}
    filled = {n: 0 for n in classes} if fill else {}
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
        if fill:
            annotation, counts = _filled(annotation, where, names, features, spec)
            for v, k in counts.items():
                filled[names.get(v, str(v))] = filled.get(names.get(v, str(v)), 0) + k
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
    return X, y, z, tomo, where, filled


def _filled(annotation, where, names, features=None, spec=None):
    """The annotation with closed outlines filled, and the voxels filled per value (logged).

    The fill compares a containing outline's inside with the tomogram through the feature
    channel :func:`_smooth_channel` picks (when the shapes match; else training_samples
    names the problem).
    """
    ann = np.asarray(annotation)
    if ann.ndim != 3 or ann.dtype.kind not in "uib":
        return ann, {}  # training_samples names the problem
    image = None
    if features is not None and tuple(int(n) for n in features.shape[1:]) == ann.shape:
        image = _smooth_channel(features, spec)
    out, counts = _fill_outlines(ann, image)
    log.info(
        "%s: filled closed outlines with their class: %s (outlines that hold other classes "
        "compared with the feature channel %s)",
        where,
        ", ".join(f"{names.get(v, v)} {k} voxels" for v, k in counts.items()) or "none",
        spec.names()[image.k] if image is not None else "none",
    )
    return out, counts


class _Channel:
    """One channel of a (F, z, y, x) feature array, read plane by plane
    (``channel[z, y0:y1, x0:x1]``; zarr stores and :class:`BlockFeatures` read boxes only)."""

    def __init__(self, features, k: int):
        self.features, self.k = features, int(k)
        self.shape = tuple(int(n) for n in features.shape[1:])

    def __getitem__(self, index):
        key = tuple(slice(i, i + 1) if isinstance(i, int | np.integer) else i for i in index)
        box = np.asarray(self.features[(slice(None), *key)])[self.k]
        return box.reshape(
            [n for i, n in zip(index, box.shape, strict=True) if isinstance(i, slice)]
        )


def _smooth_channel(features, spec: FeatureSpec | None):
    """The Gaussian-smoothed tomogram at the scale nearest 1 voxel (else the raw channel,
    else None) as a :class:`_Channel`, for :func:`fill_outlines`'s comparison."""
    if spec is None:
        return None
    names = spec.names()
    gauss = (
        [(abs(s - 1.0), -s) for s in spec.scales("gaussian")] if "gaussian" in spec.families else []
    )
    if gauss:
        s = -min(gauss)[1]
        name = next(n for n in names if n.startswith("gaussian_s") and float(n[10:]) == s)
    elif "raw" in names:
        name = "raw"
    else:
        return None
    return _Channel(features, names.index(name))


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
