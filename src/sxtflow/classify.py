"""Deprecated alias of the classifier of :mod:`sxtflow.segment`, kept for one release.

``sxtflow.classify`` moved into :mod:`sxtflow.segment` (``_train``, ``_model``, ``_predict``,
``_coarse``, ``_uncertainty``). Import from ``sxtflow.segment`` instead; every public name of
the old module is re-exported here unchanged.
"""

from ._deprecated import moved
from .segment import (  # noqa: F401  (public names of the old module outside its __all__)
    CLASS_WEIGHTS,
    ESTIMATORS,
    BlockFeatures,
    FeatureSpec,
    block_features,
    coarse_pass,
    deterministic_skops,
    fine_cells,
    iter_blocks,
    load_model,
    predict,
    predict_volume,
    save_model,
    slice_uncertainty,
    subset_spec,
    suggest_slices,
    train,
    training_samples,
    uncertainty,
    used_features,
)

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

moved("sxtflow.classify", "sxtflow.segment")
