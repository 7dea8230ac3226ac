"""What the stage functions share: the logger, the options' defaults, block sizes, label
tables and per-class options.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from ..io import InputError
from ..options import DEFAULTS

log = logging.getLogger("sxtflow")

PathLike = str | os.PathLike

# keyword defaults of the stages: the one definition in sxtflow.options
_SIM = DEFAULTS["simulate"]
_ANN = _SIM["annotation"]
_REC = DEFAULTS["reconstruct"]
_FEAT = DEFAULTS["features"]
_TRAIN = DEFAULTS["train"]
_MEASURE = DEFAULTS["measure"]
_COMPARE = DEFAULTS["compare"]

#: Largest relative difference of voxel size between a model's training tomograms and a
#: tomogram it segments (features are computed in voxels, so their scale moves with it).
MODEL_VOXEL_TOLERANCE = 0.05


def _named(path: PathLike, func):
    """``func`` whose errors about its input (no file known to it) name ``path``."""

    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            if exc.path is not None:
                raise
            raise InputError(path, exc.problem) from exc
        except ValueError as exc:
            raise InputError(path, str(exc)) from exc

    return call


def check_block(block: Sequence[int], shape: Sequence[int] | None = None) -> tuple[int, ...]:
    """A block size ``(z, y, x)`` of integers ≥ 1, clipped to ``shape`` when given.

    Raises ``ValueError`` for anything else (a block of 0 voxels would never finish).
    """
    try:
        out = tuple(int(b) for b in block)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or min(out) < 1 or any(float(b) != int(b) for b in block):
        raise ValueError(f"block must be three integers ≥ 1 (z, y, x voxels), got {block!r}")
    if shape is not None:
        out = tuple(min(b, int(n)) for b, n in zip(out, shape, strict=True))
    return out


def _label_table(labels):
    """A :class:`~sxtflow.labels.LabelTable` from a table, a path, or None (bundled)."""
    from ..labels import LabelTable, load_labels

    return labels if isinstance(labels, LabelTable) else load_labels(labels)


def _per_class(given: Mapping | None, defaults: Mapping, classes: Mapping) -> dict:
    """A per-class option: as given, else the default entries of the ``classes``."""
    if given is not None:
        return dict(given)
    return {k: v for k, v in defaults.items() if k in classes}
