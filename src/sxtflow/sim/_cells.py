"""Simulated yeast cells and crawling lymphocytes in a cylinder of ice, with fine truth labels
(:func:`simulate_cell`); conditions change organelle counts, sizes and shapes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..io import Volume
from ..labels import default_labels
from ._materials import _TEXTURE, ORGANELLES, compartment_lac
from ._shapes import (
    _Cell,
    _filopodia,
    _Grid,
    _heterochromatin,
    _lamellipodium,
    _nucleus,
    _place_balls,
    _place_mitochondria,
    _place_off_centre,
    _random_rotation,
    _random_unit,
    _smooth_noise,
)

CONDITION_KEYS = (
    "lipid_droplets",
    "lipid_radius_um",
    "heterochromatin_fraction",
    "vacuoles",
    "lac_scale",
    "vacuole_flatness",
    "mitochondria",
    "mitochondrion_radius_um",
    "mitochondrion_length_um",
    "mitochondrion_bend",
)


def _check_condition(condition: dict | None) -> dict:
    cond = dict(condition or {})
    for key in cond:
        if key not in CONDITION_KEYS:
            raise ValueError(
                f"unknown condition key {key!r}; understood keys: {', '.join(CONDITION_KEYS)}"
            )
    for key in ("lipid_droplets", "vacuoles", "mitochondria"):
        if key in cond:
            n = cond[key]
            if isinstance(n, bool) or int(n) != n or n < 0:
                raise ValueError(f"condition {key!r} must be a non-negative integer, got {n!r}")
            cond[key] = int(n)
    if "heterochromatin_fraction" in cond:
        f = float(cond["heterochromatin_fraction"])
        if not 0 <= f < 1:
            raise ValueError(f"condition 'heterochromatin_fraction' must be in [0, 1), got {f}")
        cond["heterochromatin_fraction"] = f
    if "lac_scale" in cond:
        s = float(cond["lac_scale"])
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"condition 'lac_scale' must be positive, got {s}")
        cond["lac_scale"] = s
    for key in ("lipid_radius_um", "mitochondrion_radius_um", "mitochondrion_length_um"):
        if key in cond:
            r = np.atleast_1d(np.asarray(cond[key], dtype=float))
            if r.size not in (1, 2) or np.any(~np.isfinite(r)) or np.any(r <= 0):
                raise ValueError(
                    f"condition {key!r} must be a positive size (µm) or a (min, max) pair, "
                    f"got {cond[key]!r}"
                )
            cond[key] = r.tolist()
    for key, lo, hi in (("vacuole_flatness", 0.0, 1.0), ("mitochondrion_bend", 0.0, 2.0)):
        if key in cond:
            f = float(cond[key])
            if not lo < f <= hi:
                raise ValueError(f"condition {key!r} must be in ({lo:g}, {hi:g}], got {f}")
            cond[key] = f
    return cond


def _mito_shape(cond: dict, rng, scale, voxel_um, length_default):
    """Radius (µm), radius range, length range (µm) and bend of the mitochondria.

    The default draws (radius 0.12–0.15 µm × scale) are always made, so a condition
    changes only what it names.
    """
    radius = max(rng.uniform(0.12, 0.15) * scale, 0.6 * voxel_um)
    spec = cond.get("mitochondrion_radius_um")
    r_range = None
    if spec is not None:
        lo, hi = (spec[0], spec[0]) if len(spec) == 1 else sorted(spec)
        r_range = (max(lo * scale, 0.6 * voxel_um), max(hi * scale, 0.6 * voxel_um))
        radius = r_range[1]
    length = cond.get("mitochondrion_length_um")
    if length is not None:
        length_default = (
            (length[0] * scale, length[0] * scale)
            if len(length) == 1
            else tuple(x * scale for x in sorted(length))
        )
    return radius, r_range, length_default, cond.get("mitochondrion_bend", 0.25)


def _radii(rng, n, rng_um, spec, scale):
    """n radii (µm): uniform in ``rng_um`` or ±10 % around / uniform within ``spec``."""
    if spec is None:
        lo, hi = rng_um
    elif len(spec) == 1:
        lo, hi = 0.9 * spec[0], 1.1 * spec[0]
    else:
        lo, hi = sorted(spec)
    return (rng.uniform(lo, hi, n) * scale).tolist()


def _fit_scale(g: _Grid, extent_um: float, margin_um: float) -> float:
    avail = min(g.r_cyl, (g.shape[0] - 1) / 2 * g.v) - margin_um
    if avail <= 0:
        raise ValueError(f"volume {g.shape} at {g.v * 1000:g} nm voxels is too small for a cell")
    return min(1.0, avail / extent_um)


def _build_yeast(cell: _Cell, cond: dict, rng):
    g = cell.g
    margin = 3 * g.v + 0.05
    radius = rng.uniform(2.0, 2.5)
    axes = radius * (1 + rng.uniform(-0.08, 0.08, 3))
    s = _fit_scale(g, float(axes.max()) * 1.04, margin)
    axes = axes * s
    slack = max(min(g.r_cyl, (g.shape[0] - 1) / 2 * g.v) - margin - axes.max() * 1.04, 0)
    centre = rng.uniform(-1, 1, 3) * slack * 0.5 / np.sqrt(3)
    rot = _random_rotation(rng)
    d = cell.body(centre, axes, rot, 0.02 * s)
    wall = max(0.15 * s, 1.2 * g.v)
    cell.lab[d <= 0] = cell.v("cell_wall")
    cell.lab[d <= -wall] = cell.v("cytoplasm")
    del d
    # nucleus with a crescent nucleolus against the envelope
    cell.update_free_space()
    rn = rng.uniform(0.75, 0.95) * s
    n_axes = rn * (1 + rng.uniform(-0.07, 0.07, 3))
    n_rot = _random_rotation(rng)
    gap = max(0.12 * s, g.v)
    c = _place_off_centre(cell, float(n_axes.max()) + gap)
    if c is None:
        raise ValueError("the nucleus does not fit into this cell")
    nsl = _nucleus(cell, c, n_axes, n_rot, 0.02 * s)
    dn = _random_unit(rng)
    cell.paint_ball(c + 0.72 * rn * dn, 0.55 * rn, "nucleolus", where=("nucleus",))
    hf = cond.get("heterochromatin_fraction", 0.0)
    _heterochromatin(cell, nsl, hf, rng)
    cell.truth["nucleus"] = {
        "centre_um": c.round(4).tolist(),
        "semi_axes_um": n_axes.round(4).tolist(),
    }
    cell.truth["nucleoli"] = 1
    # vacuoles, lipid droplets, mitochondria in the remaining cytoplasm
    cell.update_free_space()
    # lipid droplets first: their count and radius may be fixed by the condition
    n_lip = cond.get("lipid_droplets", int(rng.integers(3, 7)))
    lip_r = _radii(rng, n_lip, (0.2, 0.35), cond.get("lipid_radius_um"), s)
    shrink = 1.0 if "lipid_radius_um" in cond else 0.6
    lip = _place_balls(cell, "lipid_droplet", lip_r, gap, 0.0, "lipid droplets", shrink)
    n_vac = cond.get("vacuoles", int(rng.integers(1, 4)))
    vac_r = rng.uniform(0.45, 0.8, n_vac) * s / max(1.0, np.sqrt(n_vac / 2))
    vac = _place_balls(
        cell,
        "vacuole",
        vac_r,
        gap,
        0.03 * s,
        "vacuoles",
        min_shrink=0.3,
        flatness=cond.get("vacuole_flatness"),
    )
    mito_r, r_range, lengths, bend = _mito_shape(cond, rng, s, g.v, (0.8 * s, 1.6 * s))
    n_mito = int(rng.integers(3, 7))
    mito = _place_mitochondria(
        cell,
        cond.get("mitochondria", n_mito),
        mito_r,
        lengths,
        max(0.08 * s, 0.8 * g.v),
        bend=bend,
        radius_range=r_range,
    )
    cell.truth.update(
        scale=round(s, 4),
        cell={"centre_um": centre.round(4).tolist(), "semi_axes_um": axes.round(4).tolist()},
        cell_wall_thickness_um=round(wall, 4),
        vacuole_list=vac,
        lipid_droplet_list=lip,
        mitochondrion_list=mito,
        protrusions=[],
    )


def _build_lymphocyte(cell: _Cell, cond: dict, rng):
    g = cell.g
    margin = 3 * g.v + 0.05
    radius = rng.uniform(3.5, 4.0)
    axes = radius * (1 + rng.uniform(-0.06, 0.06, 3))
    extent = float(axes.max()) * 1.05 + 1.0  # body + the shortest protrusion
    s = _fit_scale(g, extent, margin)
    axes = axes * s
    centre = np.zeros(3)
    rot = _random_rotation(rng)
    d = cell.body(centre, axes, rot, 0.06 * s)
    cell.lab[d <= 0] = cell.v("cytoplasm")
    del d
    # large, eccentric nucleus
    cell.update_free_space()
    rn = rng.uniform(0.60, 0.68) * float(axes.min())
    n_axes = rn * (1 + rng.uniform(-0.05, 0.05, 3))
    gap = max(0.15 * s, g.v)
    c = None
    for _ in range(50):
        c = cell.sample_centre(float(n_axes.max()) + gap)
        if c is not None:
            break
        n_axes *= 0.97
    if c is None:
        raise ValueError("the nucleus does not fit into this cell")
    nsl = _nucleus(cell, c, n_axes, _random_rotation(rng), 0.03 * s)
    n_nucleoli = int(rng.integers(1, 3))
    for _ in range(n_nucleoli):
        off = _random_unit(rng) * rng.uniform(0, 0.35) * rn
        cell.paint_ball(
            c + off, rng.uniform(0.3, 0.45) * s, "nucleolus", 0.02 * s, where=("nucleus",)
        )
    hf = cond.get("heterochromatin_fraction", 0.3)
    _heterochromatin(cell, nsl, hf, rng)
    cell.truth["nucleus"] = {
        "centre_um": c.round(4).tolist(),
        "semi_axes_um": n_axes.round(4).tolist(),
    }
    cell.truth["nucleoli"] = n_nucleoli
    # organelles in the thin cytoplasm
    cell.update_free_space()
    small_gap = max(0.08 * s, 0.8 * g.v)
    mito_r, r_range, lengths, bend = _mito_shape(cond, rng, s, g.v, (0.6 * s, 1.4 * s))
    n_mito = int(rng.integers(4, 9))
    mito = _place_mitochondria(
        cell,
        cond.get("mitochondria", n_mito),
        mito_r,
        lengths,
        small_gap,
        bend=bend,
        radius_range=r_range,
    )
    n_lip = cond.get("lipid_droplets", int(rng.integers(1, 4)))
    lip_r = _radii(rng, n_lip, (0.15, 0.25), cond.get("lipid_radius_um"), s)
    shrink = 1.0 if "lipid_radius_um" in cond else 0.6
    lip = _place_balls(cell, "lipid_droplet", lip_r, small_gap, 0.0, "lipid droplets", shrink)
    n_vac = cond.get("vacuoles", 0)
    vac_r = rng.uniform(0.2, 0.35, n_vac) * s
    vac = _place_balls(
        cell,
        "vacuole",
        vac_r,
        small_gap,
        0.02 * s,
        "vacuoles",
        min_shrink=0.5,
        flatness=cond.get("vacuole_flatness"),
    )
    # protrusions: filopodia and one lamellipodium
    used: list[np.ndarray] = []
    lam = _lamellipodium(cell, s, margin, used)
    filo = _filopodia(cell, int(rng.integers(2, 5)), s, margin, used)
    cell.truth.update(
        scale=round(s, 4),
        cell={"centre_um": centre.round(4).tolist(), "semi_axes_um": axes.round(4).tolist()},
        vacuole_list=vac,
        lipid_droplet_list=lip,
        mitochondrion_list=mito,
        protrusions=([lam] if lam else []) + filo,
    )


_BUILDERS = {"yeast": _build_yeast, "lymphocyte": _build_lymphocyte}


def simulate_cell(
    cell_type: str,
    shape: tuple[int, int, int],
    voxel_nm: float,
    *,
    seed: int,
    condition: dict | None = None,
    energy_ev: float = 517.0,
) -> tuple[Volume, Volume]:
    """Simulate a cryo-fixed cell in a cylinder of ice, with its ground truth.

    Parameters
    ----------
    cell_type : {"yeast", "lymphocyte"}
        ``"yeast"``: a 4–5 µm round cell with a 0.15 µm glucan wall, a nucleus with a
        crescent nucleolus, 1–3 vacuoles, 3–6 lipid droplets and tubular mitochondria.
        ``"lymphocyte"``: a 7–8 µm cell with a large eccentric nucleus (60–70 % of the
        cell diameter) with peripheral and internal heterochromatin and 1–2 nucleoli,
        thin cytoplasm with mitochondria and 1–3 lipid droplets, 2–4 filopodia and one
        lamellipodium. Cells (with protrusions) larger than the field are scaled down
        as a whole (``meta["truth"]["scale"]``); all sizes, including those given in
        ``condition``, are multiplied by that scale. Vacuoles shrink when needed to fit.
    shape : tuple of 3 ints
        Volume shape ``(z, y, x)``; ``y`` and ``x`` must be equal (the sample cylinder is
        inscribed in the ``x``–``y`` square).
    voxel_nm : float
        Isotropic voxel size in nm.
    seed : int
        Random seed; the same arguments always give the same cell.
    condition : dict, optional
        Experimental condition, so comparisons have a known answer. Keys:

        ``lipid_droplets`` : int
            Number of lipid droplets (default: yeast 3–6, lymphocyte 1–3).
        ``lipid_radius_um`` : float or (float, float)
            Droplet radius in µm (±10 %), or a (min, max) range (default: yeast 0.2–0.35,
            lymphocyte 0.15–0.25). Given radii are kept exactly (``ValueError`` if the
            droplets cannot fit); default radii may shrink up to 40 % to fit.
        ``heterochromatin_fraction`` : float in [0, 1)
            Fraction of the nuclear volume (nucleoli included) that is heterochromatin
            (default: yeast 0, lymphocyte 0.3).
        ``vacuoles`` : int
            Number of vacuoles (default: yeast 1–3, lymphocyte 0).
        ``lac_scale`` : float
            Factor on the LAC of the organelles (nucleus, nucleolus, heterochromatin,
            vacuole, lipid droplet, mitochondrion); cytoplasm, wall, protrusions and ice
            are unchanged (default 1).
        ``vacuole_flatness`` : float in (0, 1]
            Vacuoles are oblate spheroids whose short semi-axis is this fraction of the
            radius (random orientation; default round).
        ``mitochondria`` : int
            Number of mitochondria tried (default yeast 3–6, lymphocyte 4–8; fewer are
            placed when the cytoplasm is full).
        ``mitochondrion_radius_um`` : float or (float, float)
            Tube radius in µm, or a (min, max) range drawn per tube (default 0.12–0.15,
            one radius per cell). Thin tubes of 2–3 voxels radius test thin-structure
            segmentation.
        ``mitochondrion_length_um`` : float or (float, float)
            Tube length (µm) or range (default yeast 0.8–1.6, lymphocyte 0.6–1.4).
        ``mitochondrion_bend`` : float in (0, 2]
            Persistence of the tubes' random walk: the standard deviation (rad) of the
            direction change per 0.1 µm (default 0.25; 0.6 gives bent, curling tubes).

        Any other key raises ``ValueError`` naming it.
    energy_ev : float
        Photon energy in eV for the LAC table.

    Returns
    -------
    lac : Volume
        float32 ``(z, y, x)`` LAC in µm⁻¹: 0 (vacuum) outside the sample cylinder, ice
        inside it, the cell fully inside the cylinder. Compartments carry smooth
        correlated texture of a few % and edges are softened by ~0.5 voxel.
    labels : Volume
        uint8 ``(z, y, x)`` fine truth labels (values of ``labels.tsv``); 0 outside the
        sample cylinder.

    Notes
    -----
    Both volumes have ``voxel_nm`` and the same ``meta`` besides ``kind``:
    ``cell_type``, ``seed``, ``condition`` (as given), ``energy_ev``, ``unit`` and
    ``ice_lac_per_um`` (LAC volume), ``lac_per_um`` (base LAC per compartment, after
    ``lac_scale``) and ``truth``: ``scale``, ``cell`` (centre/semi-axes µm), ``nucleus``,
    ``nucleoli`` (count), ``lipid_droplets`` / ``vacuoles`` / ``mitochondria`` (counts) with
    ``*_list`` entries (centre, radius or length in µm), ``heterochromatin_fraction``
    (measured heterochromatin voxels / nuclear voxels), ``protrusions`` (list of dicts
    with ``type``, ``length_um``, ``thickness_um``, lamellipodia also ``width_um``),
    ``label_voxels`` and ``volume_um3`` per fine label name.
    """
    if cell_type not in _BUILDERS:
        raise ValueError(f"unknown cell type {cell_type!r}; choose from {', '.join(_BUILDERS)}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"shape must be 3 ints ≥ 8 (z, y, x), got {shape}")
    if shape[1] != shape[2]:
        raise ValueError(f"the x–y plane must be square (sample cylinder), got shape {shape}")
    voxel_nm = float(voxel_nm)
    if not (np.isfinite(voxel_nm) and voxel_nm > 0):
        raise ValueError(f"voxel_nm must be positive, got {voxel_nm}")
    cond = _check_condition(condition)
    rng = np.random.default_rng(seed)
    table = default_labels()
    cell = _Cell(shape, voxel_nm / 1000.0, rng, table)
    _BUILDERS[cell_type](cell, cond, rng)
    lab = cell.lab

    base = compartment_lac(energy_ev)
    scale = cond.get("lac_scale", 1.0)
    for name in ORGANELLES:
        base[name] *= scale
    lut = np.zeros(256, dtype=np.float32)
    amp = np.zeros(256, dtype=np.float32)
    for name, value in base.items():
        lut[table.value(name)] = value
        amp[table.value(name)] = _TEXTURE[name]
    v = cell.g.v
    tex = 0.6 * _smooth_noise(shape, max(0.08 / v, 1.0), rng) + 0.8 * _smooth_noise(
        shape, max(0.5 / v, 1.0), rng
    )
    lac = lut[lab] * (1 + amp[lab] * tex)
    del tex
    lac = ndi.gaussian_filter(lac, 0.5)
    lac[~cell.cyl] = 0
    np.maximum(lac, 0, out=lac)

    truth = _truth_summary(cell, table)
    meta = {
        "cell_type": cell_type,
        "seed": int(seed),
        "condition": dict(condition or {}),
        "energy_ev": float(energy_ev),
        "lac_per_um": {k: round(float(x), 6) for k, x in base.items()},
        "truth": truth,
    }
    lac_vol = Volume(
        lac.astype(np.float32, copy=False),
        voxel_nm,
        {"kind": "lac", "unit": "1/um", "ice_lac_per_um": round(base["ice"], 6), **meta},
    )
    lab_vol = Volume(lab, voxel_nm, {"kind": "fine_labels", **meta})
    return lac_vol, lab_vol


def _truth_summary(cell, table) -> dict:
    """The cell's ``truth`` record completed with counts, the heterochromatin fraction and
    the voxels and volumes (µm³) of every fine label."""
    lab, v = cell.lab, cell.g.v
    counts = np.bincount(lab.ravel(), minlength=256)
    nuclear = sum(counts[table.value(n)] for n in ("nucleus", "nucleolus", "heterochromatin"))
    truth = cell.truth
    truth["lipid_droplets"] = len(truth["lipid_droplet_list"])
    truth["vacuoles"] = len(truth["vacuole_list"])
    truth["mitochondria"] = len(truth["mitochondrion_list"])
    truth["heterochromatin_fraction"] = round(
        float(counts[table.value("heterochromatin")] / max(nuclear, 1)), 5
    )
    truth["label_voxels"] = {table.name(i): int(counts[i]) for i in np.flatnonzero(counts) if i}
    truth["volume_um3"] = {k: round(n * v**3, 6) for k, n in truth["label_voxels"].items()}
    return truth
