"""Deprecated alias: :func:`dice_iou` moved to :mod:`sxtflow.segment`; kept for one release."""

from ._deprecated import moved
from .segment._evaluate import dice_iou

__all__ = ["dice_iou"]

moved("sxtflow.evaluate", "sxtflow.segment")
