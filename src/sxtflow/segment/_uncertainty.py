"""Uncertainty of a prediction and the slices to annotate next (active learning)."""

from __future__ import annotations

import numpy as np


def uncertainty(probabilities, *, slab: int = 16) -> np.ndarray:
    """Margin uncertainty ``1 − (p_max − p_second)`` per voxel.

    0 = one class is certain; 1 = the two most probable classes tie. (The margin, not the
    entropy: it is what matters for where to add annotations, and is independent of how
    the remaining probability is spread over unlikely classes.)

    Parameters
    ----------
    probabilities : array-like, shape (C, z, y, x)
        Class probabilities (numpy or zarr), e.g. from :func:`predict`.
    slab : int
        z-slices processed at a time (bounds memory).

    Returns
    -------
    ndarray, shape (z, y, x), float32, values in [0, 1]
    """
    shape = tuple(int(n) for n in probabilities.shape)
    if len(shape) != 4:
        raise ValueError(f"probabilities must be (C, z, y, x), got shape {shape}")
    out = np.zeros(shape[1:], dtype=np.float32)
    if shape[0] < 2:
        return out
    for z0 in range(0, shape[1], slab):
        p = np.asarray(probabilities[:, z0 : z0 + slab], dtype=np.float32)
        top2 = np.partition(p, shape[0] - 2, axis=0)[-2:]
        out[z0 : z0 + slab] = np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0)
    return out


def slice_uncertainty(uncertainty_map, labels, *, outside: tuple[int, ...] = (0, 1)) -> np.ndarray:
    """Mean uncertainty per z-slice inside the cell.

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float
        Per-voxel uncertainty in [0, 1] (from :func:`uncertainty` or :func:`predict_volume`).
    labels : array-like, shape (z, y, x), integer
        Predicted class values; voxels whose value is in ``outside`` are not the cell.
    outside : tuple of int
        Values that are not the cell: 0 (no data) and the ice class value (1 in the default
        label table).

    Returns
    -------
    ndarray, shape (z,), float64
        Mean uncertainty over the cell's voxels of each slice; NaN where a slice has none.

    Examples
    --------
    >>> unc = np.zeros((3, 2, 2), np.float32); unc[1] = 0.5
    >>> lab = np.full((3, 2, 2), 2, np.uint8); lab[2] = 1
    >>> slice_uncertainty(unc, lab).round(2).tolist()
    [0.0, 0.5, nan]
    """
    unc = np.asarray(uncertainty_map)
    lab = np.asarray(labels)
    if unc.shape != lab.shape or unc.ndim != 3:
        raise ValueError(
            f"uncertainty {unc.shape} and labels {lab.shape} must be the same (z, y, x) shape"
        )
    out = np.full(unc.shape[0], np.nan)
    for z in range(unc.shape[0]):
        inside = ~np.isin(lab[z], outside)
        if inside.any():
            out[z] = float(unc[z][inside].mean(dtype=np.float64))
    return out


def suggest_slices(
    uncertainty_map,
    labels,
    *,
    n: int = 5,
    min_gap: int = 3,
    annotated=None,
    outside: tuple[int, ...] = (0, 1),
) -> list[tuple[int, float]]:
    """The z-slices where one more annotation would help most.

    Ranks slices by their mean uncertainty inside the cell (:func:`slice_uncertainty`)
    and picks the most uncertain ones at least ``min_gap`` slices apart (neighbouring
    slices share smoothed features, so annotating two adjacent ones teaches little more),
    skipping slices that are already annotated.

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float in [0, 1]
    labels : array-like, shape (z, y, x), integer class values
    n : int
        Number of slices to suggest (fewer if the cell spans fewer slices).
    min_gap : int
        Minimum distance in slices between suggestions and to annotated slices.
    annotated : array-like, shape (z, y, x), optional
        Existing annotation (0 = not annotated): its slices are not suggested again.
    outside : tuple of int
        Label values that are not the cell (0 and ice).

    Returns
    -------
    list of (int, float)
        ``(z index, mean uncertainty inside the cell)``, most uncertain first.

    Examples
    --------
    >>> unc = np.zeros((10, 4, 4), np.float32); unc[2] = 0.9; unc[3] = 0.8; unc[7] = 0.5
    >>> lab = np.full((10, 4, 4), 2, np.uint8)
    >>> [z for z, _ in suggest_slices(unc, lab, n=2, min_gap=2)]
    [2, 7]
    """
    if n < 1 or min_gap < 1:
        raise ValueError(f"n and min_gap must be ≥ 1, got n={n}, min_gap={min_gap}")
    score = slice_uncertainty(uncertainty_map, labels, outside=outside)
    taken: list[int] = []
    if annotated is not None:
        ann = np.asarray(annotated)
        if ann.shape != score.shape + tuple(np.shape(labels)[1:]):
            raise ValueError(f"annotation shape {ann.shape} differs from {np.shape(labels)}")
        taken = [int(z) for z in np.flatnonzero(ann.reshape(ann.shape[0], -1).any(axis=1))]
    out: list[tuple[int, float]] = []
    for z in np.argsort(np.where(np.isnan(score), -np.inf, score), kind="stable")[::-1]:
        if len(out) >= n or np.isnan(score[z]):
            break
        if all(abs(int(z) - t) >= min_gap for t in taken):
            out.append((int(z), round(float(score[z]), 6)))
            taken.append(int(z))
    return out
