"""Deprecated alias: ``sxtflow.measure`` moved to :mod:`sxtflow.quantify`; kept for one release.

Import from ``sxtflow.quantify`` instead; every public name of the old module is re-exported
here unchanged.
"""

from ._deprecated import moved
from .quantify import (
    CELL_CLASS,
    OBJECT_COLUMNS,
    cell_mask,
    cell_summary,
    instances,
    measure_objects,
)
from .quantify._measure import CONNECTIVITY_26, mask_box, mask_centroid  # noqa: F401

__all__ = [
    "instances",
    "measure_objects",
    "cell_summary",
    "cell_mask",
    "OBJECT_COLUMNS",
    "CELL_CLASS",
]

moved("sxtflow.measure", "sxtflow.quantify")
