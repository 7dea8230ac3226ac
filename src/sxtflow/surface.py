"""Deprecated alias: ``sxtflow.surface`` moved to :mod:`sxtflow.quantify`; kept for one release.

Import from ``sxtflow.quantify`` instead; every public name of the old module is re-exported
here unchanged.
"""

from ._deprecated import moved
from .quantify import PROTRUSION_COLUMNS, cell_body, protrusions, surface_summary

__all__ = ["cell_body", "protrusions", "surface_summary", "PROTRUSION_COLUMNS"]

moved("sxtflow.surface", "sxtflow.quantify")
