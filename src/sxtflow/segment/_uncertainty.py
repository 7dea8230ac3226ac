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


def class_slice_uncertainty(
    uncertainty_map, labels, values, *, reach: int = 2, slab: int = 16
) -> np.ndarray:
    """Summed uncertainty near each class's predicted voxels, per z-slice.

    The uncertain voxels of a class lie on both sides of its predicted boundary (a thin
    object predicted too thin is uncertain in the cytoplasm around it), so each class's
    predicted voxels are grown in-plane by ``reach`` voxels before summing.

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float in [0, 1]
    labels : array-like, shape (z, y, x), integer class values
    values : sequence of int
        The class values to sum for.
    reach : int
        In-plane growth (voxels, a disk) of each class's predicted voxels; 0: none.
    slab : int
        z-slices processed at a time (bounds memory).

    Returns
    -------
    ndarray, shape (len(values), z), float64
        Summed uncertainty (voxels × [0, 1]) near each class in each slice.

    Examples
    --------
    >>> unc = np.full((2, 5, 5), 0.5, np.float32)
    >>> lab = np.full((2, 5, 5), 2, np.uint8); lab[1, 2, 2] = 9
    >>> class_slice_uncertainty(unc, lab, [9], reach=1).tolist()
    [[0.0, 2.5]]
    """
    from scipy import ndimage as ndi

    unc = np.asarray(uncertainty_map)
    lab = np.asarray(labels)
    if unc.shape != lab.shape or unc.ndim != 3:
        raise ValueError(
            f"uncertainty {unc.shape} and labels {lab.shape} must be the same (z, y, x) shape"
        )
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disk = ((yy * yy + xx * xx) <= reach * reach)[None]
    out = np.zeros((len(values), unc.shape[0]))
    for z0 in range(0, unc.shape[0], slab):
        u = np.asarray(unc[z0 : z0 + slab], dtype=np.float64)
        lz = lab[z0 : z0 + slab]
        for k, v in enumerate(values):
            near = lz == v
            if not near.any():
                continue
            if reach > 0:  # in the class's box grown by the reach: the same mask
                box = _grown_box(near, reach)
                near[box] = ndi.binary_dilation(near[box], disk)
            out[k, z0 : z0 + slab] = np.where(near, u, 0.0).sum(axis=(1, 2))
    return out


def _grown_box(mask: np.ndarray, reach: int) -> tuple[slice, ...]:
    """The bounding box of ``mask``'s True voxels (z, y, x), grown in-plane by ``reach``
    voxels (clipped): an in-plane dilation by ``reach`` changes nothing outside it."""
    box = [slice(0, mask.shape[0])]
    for axis in (1, 2):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(hit[0]) - reach, 0), int(hit[-1]) + reach + 1))
    return tuple(box)


def suggest_slices(
    uncertainty_map,
    labels,
    *,
    n: int = 5,
    min_gap: int = 3,
    annotated=None,
    outside: tuple[int, ...] = (0, 1),
    annotated_voxels=None,
    reach: int = 2,
) -> list[tuple[int, float]]:
    """The z-slices where one more annotation would help most.

    What a slice is worth is judged per class: ``U_c(z)``, the uncertainty summed near the
    voxels predicted as class ``c`` in the slice (:func:`class_slice_uncertainty`), counts
    relative to how much of ``c`` is annotated already, with diminishing returns: a slice
    scores ``Σ_c log(1 + U_c(z) / (n_c + 1 + A_c))`` for ``n_c`` annotated voxels of the
    class and ``A_c`` the uncertainty of ``c`` in the slices suggested before it. So a
    class with little annotation (thin mitochondria, small droplets) draws the
    suggestions to where it is uncertain, large slices through the cell outrank its caps
    (sums, not means), and once a slice covers a class the next suggestion goes where
    another class (or another part of the same one) is uncertain. Slices are at least
    ``min_gap`` apart (neighbouring slices share smoothed features) and from the
    annotated ones. Measured against random slices in ``benchmarks/segmentation.py
    --active`` (``docs/segmentation.md``, "Robustness suite").

    Parameters
    ----------
    uncertainty_map : array-like, shape (z, y, x), float in [0, 1]
    labels : array-like, shape (z, y, x), integer class values
    n : int
        Number of slices to suggest (fewer if the cell spans fewer slices).
    min_gap : int
        Minimum distance in slices between suggestions and to annotated slices.
    annotated : array-like, shape (z, y, x), optional
        Existing annotation (0 = not annotated): its slices are not suggested again, and
        its voxels per class are ``n_c`` unless ``annotated_voxels`` is given.
    outside : tuple of int
        Label values that are not the cell (0 and ice).
    annotated_voxels : mapping of int to int, optional
        Annotated voxels per class value (e.g. the model card's ``n_training_voxels``,
        by value), where the annotation itself is not at hand. Neither given: 0 each.
    reach : int
        In-plane growth (voxels) of each class's predicted voxels (see
        :func:`class_slice_uncertainty`).

    Returns
    -------
    list of (int, float)
        ``(z index, score)`` in the order suggested (most useful first); the score is the
        slice's value above when it was picked.

    Examples
    --------
    >>> unc = np.full((10, 6, 6), 0.2, np.float32)
    >>> lab = np.full((10, 6, 6), 2, np.uint8)
    >>> lab[7, 2:4, 2:4] = 9; unc[7, 1:5, 1:5] = 0.9  # a rare, uncertain class in slice 7
    >>> [z for z, _ in suggest_slices(unc, lab, n=2, min_gap=2, annotated_voxels={2: 500})]
    [7, 0]
    """
    if n < 1 or min_gap < 1:
        raise ValueError(f"n and min_gap must be ≥ 1, got n={n}, min_gap={min_gap}")
    lab = np.asarray(labels)
    inside = slice_uncertainty(uncertainty_map, lab, outside=outside)  # checks shapes
    taken: list[int] = []
    counts = {}
    if annotated is not None:
        ann = np.asarray(annotated)
        if ann.shape != lab.shape:
            raise ValueError(f"annotation shape {ann.shape} differs from {lab.shape}")
        taken = [int(z) for z in np.flatnonzero(ann.reshape(ann.shape[0], -1).any(axis=1))]
        values, k = np.unique(ann[ann != 0], return_counts=True)
        counts = {int(v): int(c) for v, c in zip(values, k, strict=True)}
    if annotated_voxels is not None:
        counts = {int(v): int(c) for v, c in dict(annotated_voxels).items()}
    values = [int(v) for v in np.unique(lab) if int(v) not in set(outside)]
    U = class_slice_uncertainty(uncertainty_map, lab, values, reach=reach)
    base = np.array([counts.get(v, 0) + 1.0 for v in values])[:, None]
    got = np.zeros_like(base)
    out: list[tuple[int, float]] = []
    eligible = ~np.isnan(inside)
    while len(out) < n:
        score = np.log1p(U / (base + got)).sum(axis=0)
        score[~eligible] = -np.inf
        for t in taken:
            score[max(t - min_gap + 1, 0) : t + min_gap] = -np.inf
        z = int(np.argmax(score))
        if not np.isfinite(score[z]) or score[z] <= 0:
            break
        out.append((z, round(float(score[z]), 6)))
        taken.append(z)
        got[:, 0] += U[:, z]
    return out
