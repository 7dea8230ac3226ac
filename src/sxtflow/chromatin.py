"""Deprecated alias: ``sxtflow.chromatin`` moved to :mod:`sxtflow.quantify`; kept for one release.

Import from ``sxtflow.quantify`` instead; every public name of the old module is re-exported
here unchanged.
"""

from ._deprecated import moved
from .quantify import chromatin_threshold, radial_profile, split_chromatin
from .quantify._measure import mask_box  # noqa: F401  (the old module's name)

__all__ = ["split_chromatin", "chromatin_threshold", "radial_profile"]

moved("sxtflow.chromatin", "sxtflow.quantify")
