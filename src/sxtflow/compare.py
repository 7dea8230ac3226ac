"""Deprecated alias of :mod:`sxtflow.stats` and :mod:`sxtflow.plot`, kept for one release.

``sxtflow.compare`` was split into :mod:`sxtflow.stats` (tables per cell, tests) and
:mod:`sxtflow.plot` (the figures). Import from those; every public name of the old module
is re-exported here unchanged.
"""

from .plot import *  # noqa: F403
from .plot import __all__ as _plot_names
from .stats import *  # noqa: F403
from .stats import __all__ as _stats_names

__all__ = [*_stats_names, *_plot_names]
