"""Deprecated alias: the previews moved to :mod:`sxtflow.plot`; kept for one release."""

from ._deprecated import moved
from .plot import reconstruction_preview, uncertainty_preview

__all__ = ["reconstruction_preview", "uncertainty_preview"]

moved("sxtflow.qc", "sxtflow.plot")
