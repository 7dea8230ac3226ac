"""Deprecated alias: ``sxtflow.relations`` moved to :mod:`sxtflow.quantify`; kept for one release.

Import from ``sxtflow.quantify`` instead; every public name of the old module is re-exported
here unchanged.
"""

from ._deprecated import moved
from .quantify import RELATION_BASE_COLUMNS, object_relations, surface_voxels

__all__ = ["surface_voxels", "object_relations", "RELATION_BASE_COLUMNS"]

moved("sxtflow.relations", "sxtflow.quantify")
