"""Deprecated alias: the previews moved to :mod:`sxtflow.plot`; kept for one release."""

from .plot import reconstruction_preview, uncertainty_preview

__all__ = ["reconstruction_preview", "uncertainty_preview"]
