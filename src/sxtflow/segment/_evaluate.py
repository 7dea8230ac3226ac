"""Segmentation quality against a ground truth: overlap scores per class."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["dice_iou"]


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
