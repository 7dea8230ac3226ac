"""Deprecated alias of :mod:`sxtflow.recon`, kept for one release.

``sxtflow.reconstruct`` was split into the :mod:`sxtflow.recon` package (normalize, stripe,
align, center, projector, fbp, iterative, backends, calibrate, pipeline). Import from
``sxtflow.recon`` instead; every public name of the old module is re-exported here unchanged.
"""

from ._deprecated import moved
from .recon import *  # noqa: F403
from .recon import __all__  # noqa: F401

moved("sxtflow.reconstruct", "sxtflow.recon")
