"""Deprecated alias of the feature functions of :mod:`sxtflow.segment`, kept for one release.

``sxtflow.features`` moved into the :mod:`sxtflow.segment` package (``_features``,
``_filters``, ``_feature_store``). Import from ``sxtflow.segment`` instead; every public name
of the old module is re-exported here unchanged.
"""

from ._deprecated import moved
from .segment._feature_store import open_features, write_features
from .segment._features import (
    FAMILIES,
    FAST_SPEC,
    BlockFeatures,
    FeatureSpec,
    block_features,
    compute_features,
    iter_blocks,
)
from .segment._filters import eigvalsh3, gaussian_kernel

__all__ = [
    "FAMILIES",
    "FeatureSpec",
    "FAST_SPEC",
    "compute_features",
    "block_features",
    "BlockFeatures",
    "write_features",
    "open_features",
    "iter_blocks",
    "eigvalsh3",
    "gaussian_kernel",
]

moved("sxtflow.features", "sxtflow.segment")
