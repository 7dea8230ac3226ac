"""Segmentation quality against a ground truth: overlap scores per class."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..core import InputError, Volume
from ..io import read_volume
from ..labels import LabelTable, load_labels
from ._grid import _integer_labels, read_labels_on_grid


def _scores(p: np.ndarray, t: np.ndarray) -> tuple[float, float, int, int]:
    n_p, n_t = int(p.sum()), int(t.sum())
    inter = int(np.count_nonzero(p & t))
    union = n_p + n_t - inter
    if union == 0:
        return np.nan, np.nan, n_t, n_p
    return 2.0 * inter / (n_p + n_t), inter / union, n_t, n_p


def dice_iou(
    pred: np.ndarray, truth: np.ndarray, classes: dict[str, int], *, ice: str = "ice"
) -> pd.DataFrame:
    """Dice coefficient and intersection-over-union per class.

    Parameters
    ----------
    pred, truth : ndarray of int, shape (z, y, x)
        Predicted and true class labels (same value namespace, e.g. truth mapped with
        :meth:`sxtflow.labels.LabelTable.to_classes`). Voxels of other values (such as
        0 = unannotated) count as "not this class".
    classes : dict of str to int
        Class name → label value.
    ice : str, optional
        Name of the embedding-medium class. If it is in ``classes``, a row ``"cell"`` scores the
        union of all other classes.

    Returns
    -------
    pandas.DataFrame
        Columns ``class``, ``dice`` = 2|P∩T| / (|P| + |T|), ``iou`` = |P∩T| / |P∪T|,
        ``n_truth_voxels``, ``n_pred_voxels``; one row per class (in the order of
        ``classes``), then ``cell``. A class absent from both volumes has ``dice`` and ``iou``
        NaN (nothing to score), so it drops out of ``mean()`` rather than counting as perfect.

    Raises
    ------
    ValueError
        If the shapes differ (the message gives both).

    Examples
    --------
    >>> t = np.array([[[1, 2, 2, 2]]]); p = np.array([[[1, 1, 2, 2]]])
    >>> dice_iou(p, t, {"ice": 1, "cytoplasm": 2})["dice"].round(3).tolist()
    [0.667, 0.8, 0.8]
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} and truth shape {truth.shape} differ")
    rows = []
    for name, value in classes.items():
        d, j, nt, npred = _scores(pred == value, truth == value)
        rows.append(
            {"class": name, "dice": d, "iou": j, "n_truth_voxels": nt, "n_pred_voxels": npred}
        )
    if ice in classes:
        cell_values = [v for k, v in classes.items() if k != ice]
        d, j, nt, npred = _scores(np.isin(pred, cell_values), np.isin(truth, cell_values))
        rows.append(
            {"class": "cell", "dice": d, "iou": j, "n_truth_voxels": nt, "n_pred_voxels": npred}
        )
    return pd.DataFrame(rows, columns=["class", "dice", "iou", "n_truth_voxels", "n_pred_voxels"])


def read_truth(
    path: str | os.PathLike,
    classes: Mapping[str, int],
    *,
    labels=None,
    ignore: Sequence[int] = (),
    shape: Sequence[int] | None = None,
    voxel_nm=None,
    source: Mapping | None = None,
) -> tuple[Volume, int]:
    """A full ground-truth label volume, checked and mapped onto the segmentation classes.

    Parameters
    ----------
    path : path-like
        The truth (values of the label table ``labels``; 0 = not scored).
    classes : mapping of str to int
        The segmentation classes.
    labels : path-like or LabelTable, optional
        The label table (None = bundled).
    ignore : sequence of int
        Truth values that are not scored (e.g. 255 = unsure); reported by the caller.
    shape, voxel_nm : optional
        The segmentation's grid: the truth must match it (a truth file without a voxel size
        is taken to lie on it); ``source`` (``meta["resampled_from"]``) allows a truth on the
        tomogram's original grid, resampled with it.

    Returns
    -------
    (Volume, int)
        The truth in class values (0 = not scored) and the number of ignored voxels.

    Raises
    ------
    InputError
        Values not in the label table, values that map to none of ``classes``, non-integer
        values, or a shape or voxel size that differs from the segmentation's.
    """
    table = labels if isinstance(labels, LabelTable) else load_labels(labels)
    if shape is None:
        truth = read_volume(path)
        data, voxel = _integer_labels(truth.data, path, "truth"), truth.voxel_nm
    else:
        data = read_labels_on_grid(path, shape, voxel_nm, what="truth", source=source)
        voxel = voxel_nm
    ignored = np.isin(data, np.asarray(list(ignore), dtype=np.int64))
    n_ignored = int(np.count_nonzero(ignored))
    data = np.where(ignored, 0, data).astype(np.uint8)
    bad = table.unmapped_values(np.unique(data), list(classes))
    if bad["unknown"]:
        raise InputError(
            path,
            f"truth values {bad['unknown']} are not in the label table ({table.source}): "
            "another numbering? Relabel the truth with the table's values, or list the values "
            "that are not to be scored in the config's evaluate.ignore",
        )
    if bad["unmapped"]:
        names = [f"{v} ({table.name(v)})" for v in bad["unmapped"]]
        raise InputError(
            path,
            f"truth values {', '.join(names)} belong to none of the classes "
            f"({', '.join(classes)}); add a class, or list them in evaluate.ignore",
        )
    mapped = table.to_classes(data, list(classes))
    return Volume(mapped, voxel), n_ignored
