"""The classifier's model files and cards: skops archives written byte for byte
deterministically and loaded against an explicit list of trusted types (never pickle),
the classes and feature spec a card records.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import InputError, atomic_path, read_json, write_json
from ._features import FeatureSpec

_DEFAULT_BLOCK = (64, 64, 64)
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


def _class_columns(model, card: dict) -> tuple[np.ndarray, np.ndarray]:
    """Class values (ascending) and the model's probability column of each."""
    classes = _sorted_classes(card["classes"])
    values = np.array(list(classes.values()), dtype=np.uint8)
    model_classes = [int(c) for c in model.classes_]
    missing = [int(v) for v in values if int(v) not in model_classes]
    if missing:
        raise ValueError(f"model cannot predict class values {missing} listed in its card")
    return values, np.array([model_classes.index(int(v)) for v in values])
