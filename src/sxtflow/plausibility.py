"""Physical plausibility of a tomogram's LAC for its photon energy (QC of units).

Reference LACs come from compositions through ``xraydb`` (Henke photoabsorption tables), as in
:mod:`sxtflow.simulate`; the ranges are wide on purpose: they catch unit and calibration errors
(a factor 10–1000: LAC per voxel instead of per µm, a wrong voxel size, a wrong sign), not
biology.
"""

from __future__ import annotations

import numpy as np

from .core import Volume

__all__ = ["REFERENCE_MATERIALS", "PLAUSIBLE_FACTORS", "reference_lac", "lac_plausibility"]

#: Compositions (formula, g/cm³) of the references of :func:`reference_lac`.
REFERENCE_MATERIALS = {
    "ice": ("H2O", 0.92),
    "water": ("H2O", 1.0),
    "protein": ("C94H139N24O31S", 1.35),
}
#: Plausible LAC as factors of the references: ice within [⅓, 3] × LAC(ice); the mean of
#: the cell (the voxels above Otsu's threshold) within [½ × LAC(ice), 1.5 × LAC(protein)].
#: Wide on purpose: they catch unit and calibration errors (factors of 10–1000: a volume in
#: LAC per voxel, a wrong voxel size, a wrong sign), not biology.
PLAUSIBLE_FACTORS = {"ice": (1 / 3, 3.0), "cell": (0.5, 1.5)}


def reference_lac(energy_ev: float) -> dict[str, float]:
    """Photoabsorption LAC (µm⁻¹) of ice, water and protein at ``energy_ev`` (xraydb, Henke).

    Examples
    --------
    >>> round(reference_lac(517.0)["ice"], 2), round(reference_lac(517.0)["protein"], 2)
    (0.11, 1.32)
    """
    from .sim._materials import material_lac

    return {name: material_lac(f, d, energy_ev) for name, (f, d) in REFERENCE_MATERIALS.items()}


def _cell_lac(data: np.ndarray) -> float:
    """Mean LAC of the voxels above Otsu's threshold inside the inscribed cylinder (the
    cell, roughly; no segmentation exists yet). NaN when nothing stands out."""
    from skimage.filters import threshold_otsu

    ny, nx = data.shape[1:]
    r = min(ny, nx) // 2
    yy, xx = np.ogrid[:ny, :nx]
    mask = (yy - ny // 2) ** 2 + (xx - nx // 2) ** 2 <= (0.9 * r) ** 2
    step = max(1, int(np.ceil(data.shape[0] * mask.sum() / 4e6)))
    vals = data[::step][:, mask].astype(np.float64).ravel()
    vals = vals[np.isfinite(vals)]
    if vals.size < 16 or np.ptp(vals) == 0:
        return float("nan")
    above = vals[vals > threshold_otsu(vals)]
    return float(above.mean()) if above.size >= 0.01 * vals.size else float("nan")


def lac_plausibility(volume: Volume, energy_ev: float) -> dict:
    """Check the ice and cell LAC of a tomogram against the physics of the photon energy.

    Parameters
    ----------
    volume : Volume
        Tomogram in µm⁻¹; ``meta["ice_lac_per_um"]`` is used when present (else estimated
        with :func:`sxtflow.recon.ice_lac`).
    energy_ev : float
        Photon energy in eV.

    Returns
    -------
    dict
        ``ice_lac_per_um``, ``cell_lac_per_um`` (mean above Otsu's threshold in the
        inscribed cylinder), ``ranges`` {"ice": [lo, hi], "cell": [lo, hi]} in µm⁻¹
        (:data:`PLAUSIBLE_FACTORS` × :func:`reference_lac`) and ``warnings`` (one line per
        value outside its range, saying what to check).
    """
    ice = volume.meta.get("ice_lac_per_um")
    if ice is None:
        from .recon import ice_lac

        ice = ice_lac(volume.data)
    ref = reference_lac(energy_ev)
    ranges = {
        "ice": [PLAUSIBLE_FACTORS["ice"][0] * ref["ice"], PLAUSIBLE_FACTORS["ice"][1] * ref["ice"]],
        "cell": [
            PLAUSIBLE_FACTORS["cell"][0] * ref["ice"],
            PLAUSIBLE_FACTORS["cell"][1] * ref["protein"],
        ],
    }
    cell = _cell_lac(np.asarray(volume.data))
    warnings = []
    for name, value in (("ice", float(ice)), ("cell", cell)):
        lo, hi = ranges[name]
        if not np.isfinite(value) or not lo <= value <= hi:
            warnings.append(
                f"{name} LAC {value:.3g} µm⁻¹ is outside the plausible {lo:.3g}–{hi:.3g} µm⁻¹ "
                f"at {energy_ev:g} eV (ice {ref['ice']:.3g}, protein {ref['protein']:.3g}): "
                "check the voxel size (sample sheet voxel_nm) and the units of the input "
                "(LAC in µm⁻¹, not per voxel)"
            )
    return {
        "ice_lac_per_um": float(ice),
        "cell_lac_per_um": cell,
        "ranges": ranges,
        "warnings": warnings,
    }
