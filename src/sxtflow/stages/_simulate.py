"""Stages simulate and annotate (the virtual annotator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import io
from ._common import _ANN, _SIM, PathLike, log

# --------------------------------------------------------------------------- simulate


def run_simulate(
    out_projections: PathLike,
    out_labels: PathLike,
    out_lac: PathLike,
    *,
    cell_type: str,
    seed: int,
    shape: Sequence[int] = _SIM["shape"],
    voxel_nm: float = _SIM["voxel_nm"],
    condition: Mapping | None = None,
    n_angles: int = _SIM["n_angles"],
    tilt_range_deg: float | None = _SIM["tilt_range_deg"],
    photons: float | None = _SIM["photons"],
    blur_nm: float = _SIM["blur_nm"],
    jitter_px: float = _SIM["jitter_px"],
    energy_ev: float = _SIM["energy_ev"],
) -> None:
    """Simulate one cell: truth LAC (µm⁻¹) and labels, then its raw tilt series (HDF5)."""
    from .. import sim

    log.info(
        "simulating a %s cell, %s voxels of %.1f nm, seed %d", cell_type, shape, voxel_nm, seed
    )
    lac, labels = sim.simulate_cell(
        cell_type,
        tuple(shape),
        voxel_nm,
        seed=seed,
        condition=dict(condition or {}),
        energy_ev=energy_ev,
    )
    theta = sim.tilt_angles(n_angles, tilt_range_deg)
    proj = sim.project(
        lac, theta, photons=photons, blur_nm=blur_nm, jitter_px=jitter_px, seed=seed + 1
    )
    io.write_volume(out_lac, lac)
    io.write_volume(out_labels, labels)
    io.write_projections(out_projections, proj)


def run_annotate(
    truth_labels: PathLike,
    out: PathLike,
    *,
    classes: Sequence[str],
    slices_per_class: int = _ANN["slices_per_class"],
    mode: str = _ANN["mode"],
    rim: bool = _ANN["rim"],
    seed: int = 0,
) -> None:
    """Virtual annotator: sparse, manual-style labels drawn from a truth label volume."""
    from .. import sim

    truth = io.read_volume(truth_labels)
    ann = sim.annotate(
        truth, list(classes), slices_per_class=slices_per_class, seed=seed, mode=mode, rim=rim
    )
    n = int(np.count_nonzero(ann.data))
    log.info("annotated %d voxels (%.2f %% of the volume)", n, 100.0 * n / ann.data.size)
    io.write_volume(out, ann)
