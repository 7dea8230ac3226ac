"""Deprecated alias: :func:`dice_iou` moved to :mod:`sxtflow.segment`; kept for one release."""

from .segment._evaluate import dice_iou

__all__ = ["dice_iou"]
