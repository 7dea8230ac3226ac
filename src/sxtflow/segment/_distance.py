"""Euclidean distance transforms in µm for refinement (the ``edt`` package).

Refinement's boundary step computes two distance transforms of each object's box in every
fit–threshold round, and the opening/closing of a class two to four of the class's box:
scipy's ``distance_transform_edt`` builds a feature transform and float64 distances
(about 56 bytes per voxel) and was 61 % of refinement's time. The ``edt`` package
(seung-lab) computes the same distances (to float32 rounding, 4e-7 µm at 25 nm voxels) in
float32 at about a sixth of the CPU time and a seventh of the memory. :mod:`sxtflow.quantify`
uses it too (a cell's opening, chromatin depth).
"""

from __future__ import annotations

import numpy as np


def distance_um(mask: np.ndarray, spacing_um, threads: int = 1) -> np.ndarray:
    """Distance (µm) of every True voxel of ``mask`` to the nearest False voxel.

    The same as ``scipy.ndimage.distance_transform_edt(mask, sampling=spacing_um)`` to
    float32 rounding: False voxels are 0; voxels beyond the array's faces are not
    background (callers pad when the faces should count); an all-True mask gives
    infinity (scipy returns distances to an arbitrary voxel there).

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x)
        The voxels whose distance is wanted.
    spacing_um : tuple of 3 float
        Voxel size (z, y, x) in µm (anisotropic allowed).
    threads : int
        Threads of ``edt`` (its own, outside the GIL; the same distances for any number).

    Returns
    -------
    ndarray of float32, shape (z, y, x)
        Distances in µm.

    Examples
    --------
    >>> m = np.ones((1, 1, 7), bool); m[0, 0, 3] = False
    >>> [round(float(d), 6) for d in distance_um(m, (0.04, 0.04, 0.04))[0, 0]]
    [0.12, 0.08, 0.04, 0.0, 0.04, 0.08, 0.12]
    """
    import edt

    mask = np.ascontiguousarray(mask, dtype=bool)
    spacing = tuple(float(s) for s in spacing_um)
    if mask.ndim != 3 or len(spacing) != 3:
        raise ValueError(
            f"need a 3D mask and 3 voxel sizes, got shape {mask.shape} and {spacing_um}"
        )
    if not mask.size:
        return np.zeros(mask.shape, dtype=np.float32)
    # a uint8 view of the mask (0/1: one label, the same distances): edt's bool path costs
    # about a third more CPU time
    return edt.edt(
        mask.view(np.uint8), anisotropy=spacing, black_border=False, parallel=max(int(threads), 1)
    )
