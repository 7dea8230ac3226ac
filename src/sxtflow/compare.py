"""Deprecated alias of :mod:`sxtflow.stats` and :mod:`sxtflow.plot`, kept for one release.

``sxtflow.compare`` was split into :mod:`sxtflow.stats` (tables per cell, tests) and
:mod:`sxtflow.plot` (the figures). Import from those; every public name of the old module
is re-exported here unchanged.
"""

from ._deprecated import moved
from .plot import (
    PROFILE_COLUMNS,
    plot_fractions,
    plot_lac_histograms,
    plot_measures,
    plot_radial_profiles,
)
from .stats import *  # noqa: F403
from .stats import __all__ as _stats_names

__all__ = [
    *_stats_names,
    "plot_measures",
    "plot_fractions",
    "plot_lac_histograms",
    "plot_radial_profiles",
    "PROFILE_COLUMNS",
]

moved("sxtflow.compare", "sxtflow.stats and sxtflow.plot")
