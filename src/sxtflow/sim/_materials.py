"""LAC of the simulated cell's materials from their composition (xraydb photoabsorption,
Henke tables), µm⁻¹ at a photon energy in eV.
"""

from __future__ import annotations

from functools import cache

# --------------------------------------------------------------------------- materials

PROTEIN = ("C94H139N24O31S", 1.35)
LIPID = ("C57H104O6", 0.91)  # triolein
ICE = ("H2O", 0.92)
GLUCAN = ("C6H10O5", 1.5)

#: Volume fractions of (formula, density g/cm³) components making up each compartment.
#: A compartment's LAC is the volume-weighted sum of its components' LACs.
COMPOSITIONS: dict[str, tuple[tuple[tuple[str, float], float], ...]] = {
    "ice": ((ICE, 1.0),),
    "cytoplasm": ((PROTEIN, 0.09), (ICE, 0.91)),
    "cell_wall": ((GLUCAN, 0.30), (PROTEIN, 0.05), (ICE, 0.65)),
    "nucleus": ((PROTEIN, 0.13), (ICE, 0.87)),  # nucleoplasm + euchromatin
    "nucleolus": ((PROTEIN, 0.20), (ICE, 0.80)),
    "heterochromatin": ((PROTEIN, 0.20), (ICE, 0.80)),
    "vacuole": ((PROTEIN, 0.025), (ICE, 0.975)),
    "lipid_droplet": ((LIPID, 0.75), (PROTEIN, 0.05), (ICE, 0.20)),
    "mitochondrion": ((PROTEIN, 0.16), (LIPID, 0.04), (ICE, 0.80)),
    "filopodium": ((PROTEIN, 0.10), (ICE, 0.90)),
    "lamellipodium": ((PROTEIN, 0.10), (ICE, 0.90)),
}

#: Compartments whose LAC the ``lac_scale`` condition multiplies (organelles, not the
#: cytoplasm, cell wall, protrusions or ice, which stay as references).
ORGANELLES = (
    "nucleus",
    "nucleolus",
    "heterochromatin",
    "vacuole",
    "lipid_droplet",
    "mitochondrion",
)

#: Relative amplitude of the smooth texture (fraction of the compartment's LAC).
_TEXTURE = {
    "ice": 0.01,
    "cytoplasm": 0.05,
    "cell_wall": 0.04,
    "nucleus": 0.05,
    "nucleolus": 0.04,
    "heterochromatin": 0.05,
    "vacuole": 0.05,
    "lipid_droplet": 0.03,
    "mitochondrion": 0.05,
    "filopodium": 0.04,
    "lamellipodium": 0.04,
}


#: :func:`material_lac` (µm⁻¹) of the compositions used here at the default photon energy,
#: 517 eV, exactly as xraydb 4.5 computes it: looked up instead of importing xraydb (with
#: SQLAlchemy, 0.65 CPU-s a process) in every simulate and reconstruct job; the tests check
#: each value against xraydb itself (tests/unit/sim/test_simulate.py).
HENKE_517: dict[tuple[str, float], float] = {
    ("C94H139N24O31S", 1.35): 1.3153797660606827,  # PROTEIN
    ("C57H104O6", 0.91): 0.886548945141636,  # LIPID
    ("H2O", 0.92): 0.10955676815277034,  # ICE
    ("C6H10O5", 1.5): 0.9261959988755509,  # GLUCAN
    ("H2O", 1.0): 0.11908344364431557,  # water
}


def material_lac(formula: str, density_g_cm3: float, energy_ev: float = 517.0) -> float:
    """Linear absorption coefficient of a material from its composition.

    Parameters
    ----------
    formula : str
        Chemical formula, e.g. ``"H2O"`` or ``"C94H139N24O31S"`` (average protein).
    density_g_cm3 : float
        Mass density in g/cm³.
    energy_ev : float
        Photon energy in eV (water window: 510–520 eV).

    Returns
    -------
    float
        Photoabsorption LAC in µm⁻¹ (``xraydb.material_mu(..., kind="photo")``, Henke tables;
        :data:`HENKE_517` at 517 eV).
    """
    known = HENKE_517.get((formula, float(density_g_cm3)))
    if known is not None and float(energy_ev) == 517.0:
        return known
    import xraydb

    mu_per_cm = xraydb.material_mu(
        formula, float(energy_ev), density=float(density_g_cm3), kind="photo"
    )
    return float(mu_per_cm) * 1e-4


@cache
def _compartment_lac(energy_ev: float) -> tuple[tuple[str, float], ...]:
    out = []
    for name, parts in COMPOSITIONS.items():
        lac = sum(frac * material_lac(f, d, energy_ev) for (f, d), frac in parts)
        out.append((name, float(lac)))
    return tuple(out)


def compartment_lac(energy_ev: float = 517.0) -> dict[str, float]:
    """LAC of every simulated compartment, mixed from :data:`COMPOSITIONS`.

    Parameters
    ----------
    energy_ev : float
        Photon energy in eV.

    Returns
    -------
    dict of str to float
        Label name (as in ``labels.tsv``) → LAC in µm⁻¹. At 517 eV: ice ≈ 0.11,
        vacuole ≈ 0.14, cytoplasm ≈ 0.22, nucleus ≈ 0.25, heterochromatin and nucleolus
        ≈ 0.35, mitochondrion ≈ 0.33, cell wall ≈ 0.41, lipid droplet ≈ 0.75.
        Cached per energy; the returned dict is a fresh copy.
    """
    return dict(_compartment_lac(float(energy_ev)))
