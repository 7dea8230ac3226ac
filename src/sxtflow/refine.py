"""Deprecated alias: refinement moved to :mod:`sxtflow.segment`; kept for one release.

Import from ``sxtflow.segment`` instead; every public name of the old module is re-exported
here unchanged.
"""

from ._deprecated import moved
from .segment import (  # noqa: F401  (mask_box: a public name outside the old __all__)
    DEFAULT_RULES,
    estimate_blur,
    mask_box,
    refine_labels,
    separate_instances,
    snap_boundaries,
)

__all__ = [
    "refine_labels",
    "snap_boundaries",
    "estimate_blur",
    "separate_instances",
    "DEFAULT_RULES",
]

moved("sxtflow.refine", "sxtflow.segment")
