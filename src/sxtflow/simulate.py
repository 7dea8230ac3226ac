"""Simulated soft X-ray tomography of whole cells, with ground truth.

Everything here is deterministic under a seed, so tests and the demo pipeline can
compare what the pipeline measures with what the simulator put in.

* :func:`material_lac` and :func:`compartment_lac` give linear absorption coefficients
  (LAC, µm⁻¹) from chemical composition (``xraydb`` photoabsorption, Henke tables).
* :func:`simulate_cell` builds a LAC volume and a fine truth label volume of a yeast cell
  or a crawling lymphocyte inside a cylinder of ice.
* :func:`tilt_angles` and :func:`project` make a raw tilt series (counts, flats, darks)
  with Poisson noise, zone-plate blur and per-projection misalignment.
* :func:`annotate` is a "virtual annotator" painting sparse scribbles like a person in napari.

Conventions follow ``docs/contracts.md``: volumes are ``(z, y, x)``, the rotation axis is
``z``, detector rows are ``z`` and columns are ``x``; the sample lies inside the cylinder
inscribed in the ``x``–``y`` square and outside it is vacuum (LAC 0, label 0).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.distance import cdist

from sxtflow.io import Projections, Volume
from sxtflow.labels import LabelTable, default_labels
from sxtflow.progress import progress

__all__ = [
    "COMPOSITIONS",
    "CONDITION_KEYS",
    "material_lac",
    "compartment_lac",
    "simulate_cell",
    "tilt_angles",
    "project",
    "degrade",
    "annotate",
    "ANNOTATION_MODES",
]

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

_NOISE_FREE_FLAT = 10000.0  # nominal flat level (counts) of noise-free series


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
        Photoabsorption LAC in µm⁻¹ (``xraydb.material_mu(..., kind="photo")``, Henke tables).
    """
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


# --------------------------------------------------------------------------- helpers


def _smooth_noise(shape, corr_vox: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation ~``corr_vox`` voxels.

    Generated on a coarse grid and interpolated up (linear), so it is cheap for big volumes.
    """
    shape = tuple(int(s) for s in shape)
    corr_vox = max(float(corr_vox), 0.5)
    f = max(1, int(corr_vox // 2))
    small = tuple(math.ceil(s / f) + 2 for s in shape)
    g = ndi.gaussian_filter(rng.standard_normal(small), corr_vox / f, mode="wrap")
    if f > 1:
        g = ndi.zoom(g, f, order=1, grid_mode=False)
    g = g[tuple(slice(0, s) for s in shape)]
    g = g - g.mean()
    sd = g.std()
    return (g / sd if sd > 0 else g).astype(np.float32)


def _side_rng(rng: np.random.Generator, tag: int) -> np.random.Generator:
    """A generator derived from ``rng``'s seed and ``tag``, leaving ``rng``'s stream alone."""
    entropy = getattr(rng.bit_generator.seed_seq, "entropy", 0) or 0
    return np.random.default_rng([int(entropy), int(tag)])


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _random_unit(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.standard_normal(3))


def _random_rotation(rng: np.random.Generator, max_angle: float = np.pi) -> np.ndarray:
    """Rotation matrix about a random axis by an angle up to ``max_angle`` radians."""
    k = _random_unit(rng)
    a = rng.uniform(-max_angle, max_angle)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * kx + (1 - np.cos(a)) * kx @ kx


def _point_segment_distance(pz, py, px, a, b):
    """Distance (broadcast arrays) from points to segment a–b, and the segment parameter t."""
    ab = b - a
    denom = float(ab @ ab)
    if denom == 0:
        t = np.zeros(np.broadcast_shapes(pz.shape, py.shape, px.shape), dtype=np.float32)
    else:
        t = ((pz - a[0]) * ab[0] + (py - a[1]) * ab[1] + (px - a[2]) * ab[2]) / denom
        t = np.clip(t, 0.0, 1.0)
    dz = pz - (a[0] + t * ab[0])
    dy = py - (a[1] + t * ab[1])
    dx = px - (a[2] + t * ab[2])
    return np.sqrt(dz * dz + dy * dy + dx * dx), t


class _Grid:
    """Voxel grid with µm coordinates centred on the volume centre."""

    def __init__(self, shape, voxel_um: float):
        self.shape = tuple(int(s) for s in shape)
        self.v = float(voxel_um)
        self.origin = -(np.asarray(self.shape, dtype=float) - 1) / 2 * self.v
        # the sample cylinder (axis z through the y-x centre), inside skimage's radon circle
        self.r_cyl = (min(self.shape[1:]) / 2 - 1) * self.v

    def coords(self, sl=None):
        """Broadcastable (z, y, x) µm coordinate arrays (float32) of a box of slices."""
        if sl is None:
            sl = tuple(slice(0, s) for s in self.shape)
        out = []
        for ax, s in enumerate(sl):
            c = (np.arange(s.start, s.stop) * self.v + self.origin[ax]).astype(np.float32)
            shp = [1, 1, 1]
            shp[ax] = c.size
            out.append(c.reshape(shp))
        return out

    def box(self, lo_um, hi_um):
        """Slices covering the µm box [lo, hi] (clipped to the volume)."""
        lo = np.floor((np.asarray(lo_um) - self.origin) / self.v).astype(int)
        hi = np.ceil((np.asarray(hi_um) - self.origin) / self.v).astype(int) + 1
        lo = np.clip(lo, 0, self.shape)
        hi = np.clip(hi, 0, self.shape)
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))

    def sphere_box(self, centre, radius):
        c = np.asarray(centre, dtype=float)
        return self.box(c - radius - self.v, c + radius + self.v)

    def lookup(self, field: np.ndarray, pts: np.ndarray, outside=-np.inf) -> np.ndarray:
        """Nearest-voxel values of ``field`` at µm points ``pts`` (n, 3)."""
        idx = np.rint((np.atleast_2d(pts) - self.origin) / self.v).astype(int)
        ok = np.all((idx >= 0) & (idx < np.asarray(self.shape)), axis=1)
        out = np.full(len(idx), outside, dtype=float)
        out[ok] = field[tuple(idx[ok].T)]
        return out

    def inside_sample(self, pts: np.ndarray, margin_um: float) -> np.ndarray:
        """Whether µm points lie in the sample cylinder and z-range with a margin."""
        pts = np.atleast_2d(pts)
        rad = np.hypot(pts[:, 1], pts[:, 2])
        zmax = (self.shape[0] - 1) / 2 * self.v
        return (rad <= self.r_cyl - margin_um) & (np.abs(pts[:, 0]) <= zmax - margin_um)


# --------------------------------------------------------------------------- cell builder


class _Cell:
    """Incrementally paints one cell into a fine label volume."""

    def __init__(self, shape, voxel_um, rng, table: LabelTable):
        self.g = _Grid(shape, voxel_um)
        self.rng = rng
        self.t = table
        self.lab = np.zeros(self.g.shape, dtype=np.uint8)
        z, y, x = self.g.coords()
        self.cyl = np.broadcast_to((y * y + x * x) <= self.g.r_cyl**2, self.g.shape)
        self.lab[self.cyl] = table.value("ice")
        corr = max(0.3 / self.g.v, 1.5)  # shape roughness correlation ~0.3 µm
        self.shape_noise = _smooth_noise(self.g.shape, corr, rng)
        self.free_edt = None
        self.placed_pts = np.zeros((0, 3))
        self.placed_r = np.zeros(0)
        self.truth: dict = {}

    def v(self, name):
        return self.t.value(name)

    # -- body --------------------------------------------------------------------------
    def body(self, centre, semi_axes, rot, roughness_um):
        """Signed distance (µm, negative inside) to a rough ellipsoidal cell surface."""
        z, y, x = self.g.coords()
        pz, py, px = z - centre[0], y - centre[1], x - centre[2]
        rho2 = np.zeros(self.g.shape, dtype=np.float32)
        r2 = np.zeros(self.g.shape, dtype=np.float32)
        for i in range(3):
            u = rot[0, i] * pz + rot[1, i] * py + rot[2, i] * px
            rho2 += (u / semi_axes[i]) ** 2
            r2 += u * u
        rho = np.sqrt(rho2)
        d = np.sqrt(r2) * (1 - 1 / np.maximum(rho, 1e-6))
        d += roughness_um * self.shape_noise
        self.centre = np.asarray(centre, dtype=float)
        self.semi_axes = np.asarray(semi_axes, dtype=float)
        self.rot = rot
        return d

    def surface_distance(self, direction) -> float:
        """Distance from the cell centre to the (smooth) surface along a unit direction."""
        u = self.rot.T @ direction
        return float(1.0 / np.sqrt(np.sum((u / self.semi_axes) ** 2)))

    # -- free space and collisions -----------------------------------------------------
    def update_free_space(self):
        """Distance (µm) to the nearest non-cytoplasm voxel, from the current labels."""
        mask = self.lab == self.v("cytoplasm")
        self.free_edt = ndi.distance_transform_edt(mask, sampling=self.g.v) - 0.5 * self.g.v

    def fits(self, pts, radii, gap) -> bool:
        pts = np.atleast_2d(pts)
        radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
        if np.any(self.g.lookup(self.free_edt, pts) < radii + gap):
            return False
        if len(self.placed_r):
            d = cdist(pts, self.placed_pts)
            if np.any(d < radii[:, None] + self.placed_r[None, :] + gap):
                return False
        return True

    def commit(self, pts, radii):
        pts = np.atleast_2d(pts)
        radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
        self.placed_pts = np.vstack([self.placed_pts, pts])
        self.placed_r = np.concatenate([self.placed_r, radii])

    def sample_centre(self, clearance):
        """A random µm point whose free-space distance is at least ``clearance``."""
        ok = np.flatnonzero(self.free_edt.ravel() >= clearance)
        if ok.size == 0:
            return None
        idx = np.unravel_index(ok[self.rng.integers(ok.size)], self.g.shape)
        jitter = self.rng.uniform(-0.5, 0.5, 3) * self.g.v
        return self.g.origin + np.asarray(idx) * self.g.v + jitter

    # -- painting ------------------------------------------------------------------------
    def paint(self, sl, mask, name, where=("cytoplasm",)):
        allowed = np.isin(self.lab[sl], [self.v(w) for w in where])
        self.lab[sl][mask & allowed] = self.v(name)

    def paint_ball(self, centre, radius, name, roughness_um=0.0, where=("cytoplasm",), flat=None):
        """Paint a rough ball; with ``flat = (axis, ratio)`` an oblate spheroid whose
        semi-axis along the unit vector ``axis`` is ``ratio × radius`` (a flattened body)."""
        sl = self.g.sphere_box(centre, radius + roughness_um * 3)
        z, y, x = self.g.coords(sl)
        pz, py, px = z - centre[0], y - centre[1], x - centre[2]
        if flat is None:
            d = np.sqrt(pz * pz + py * py + px * px) - radius
        else:
            axis, ratio = flat
            u = pz * axis[0] + py * axis[1] + px * axis[2]
            r2 = pz * pz + py * py + px * px
            rho = np.sqrt(np.maximum(r2 - u * u, 0) + (u / ratio) ** 2)
            d = (rho - radius) * np.sqrt(r2) / np.maximum(rho, 1e-9)  # ≈ µm to the surface
        if roughness_um:
            d = d + roughness_um * self.shape_noise[sl]
        self.paint(sl, d <= 0, name, where)

    def paint_tube(self, pts, radii, name, roughness_um=0.0, where=("cytoplasm",)):
        pts = np.atleast_2d(pts)
        radii = np.broadcast_to(np.asarray(radii, dtype=float), (len(pts),))
        rmax = float(radii.max()) + roughness_um * 3
        sl = self.g.box(pts.min(0) - rmax - self.g.v, pts.max(0) + rmax + self.g.v)
        z, y, x = self.g.coords(sl)
        best = np.full([s.stop - s.start for s in sl], np.inf, dtype=np.float32)
        for i in range(len(pts) - 1):
            dist, t = _point_segment_distance(z, y, x, pts[i], pts[i + 1])
            np.minimum(best, dist - (radii[i] + t * (radii[i + 1] - radii[i])), out=best)
        if roughness_um:
            best += roughness_um * self.shape_noise[sl]
        self.paint(sl, best <= 0, name, where)


def _random_path(start, direction, length, step, bend, rng) -> np.ndarray:
    """A smooth random path (persistent random walk) of ``length`` µm; (n, 3) µm points."""
    n = max(2, int(math.ceil(length / step)) + 1)
    step = length / (n - 1)
    d = _unit(direction)
    pts = [np.asarray(start, dtype=float)]
    for _ in range(n - 1):
        d = _unit(d + rng.normal(0.0, bend, 3))
        pts.append(pts[-1] + step * d)
    return np.asarray(pts)


def _nucleus(cell: _Cell, centre, semi_axes, rot, roughness):
    """Paint an ellipsoidal nucleus; return its box slices and mask within the box."""
    rmax = float(np.max(semi_axes)) + 3 * roughness
    sl = cell.g.sphere_box(centre, rmax)
    z, y, x = cell.g.coords(sl)
    pz, py, px = z - centre[0], y - centre[1], x - centre[2]
    rho2 = 0.0
    r2 = 0.0
    for i in range(3):
        u = rot[0, i] * pz + rot[1, i] * py + rot[2, i] * px
        rho2 = rho2 + (u / semi_axes[i]) ** 2
        r2 = r2 + u * u
    rho = np.sqrt(rho2)
    d = np.sqrt(r2) * (1 - 1 / np.maximum(rho, 1e-6)) + roughness * cell.shape_noise[sl]
    cell.paint(sl, d <= 0, "nucleus")
    return sl


def _heterochromatin(cell: _Cell, sl, fraction: float, rng):
    """Turn ``fraction`` of the nuclear volume into heterochromatin (periphery + blobs)."""
    lab = cell.lab[sl]
    nuc_vals = [cell.v("nucleus"), cell.v("nucleolus"), cell.v("heterochromatin")]
    nuclear = np.isin(lab, nuc_vals)
    chromatin = lab == cell.v("nucleus")
    n_total = int(nuclear.sum())
    k = min(int(round(fraction * n_total)), int(chromatin.sum()))
    if k <= 0:
        return
    depth = ndi.distance_transform_edt(np.pad(nuclear, 1), sampling=cell.g.v)[1:-1, 1:-1, 1:-1]
    noise = _smooth_noise(lab.shape, max(0.25 / cell.g.v, 1.0), rng)
    score = np.exp(-depth / 0.4) + 0.35 * noise
    vals = score[chromatin]
    thr = np.partition(vals, vals.size - k)[vals.size - k]
    hc = chromatin & (score >= thr)
    lab[hc] = cell.v("heterochromatin")


def _place_balls(cell: _Cell, name, radii, gap, roughness, what, min_shrink=1.0, flatness=None):
    """Place non-overlapping rough balls by rejection sampling, largest first.

    A ball that does not fit is shrunk by 10 % steps down to ``min_shrink`` × its radius
    (1.0: never; used when the user fixed the radius); then ``ValueError``. With
    ``flatness`` (0 < f < 1) each is an oblate spheroid (short semi-axis ``f × radius``
    along a random direction drawn from its own stream, so the other draws are unchanged).
    """
    flat_rng = _side_rng(cell.rng, 7) if flatness else None
    placed = []
    for r0 in sorted(radii, reverse=True):
        r = r0
        while True:
            c = None
            for _ in range(400 if min_shrink >= 1 else 150):
                c = cell.sample_centre(r + gap + roughness)
                if c is None:
                    break
                if cell.fits(c, r, gap + 2 * roughness):
                    break
                c = None
            if c is not None or r * 0.9 < min_shrink * r0 - 1e-12:
                break
            r *= 0.9
        if c is None:
            raise ValueError(
                f"cannot fit {len(radii)} {what} of radius ~{np.mean(radii):.2f} µm into the "
                f"cytoplasm of this cell (placed {len(placed)}); ask for fewer or smaller ones"
            )
        cell.commit(c, r + roughness)
        flat = (_random_unit(flat_rng), float(flatness)) if flatness else None
        cell.paint_ball(c, r, name, roughness, flat=flat)
        entry = {"centre_um": c.round(4).tolist(), "radius_um": round(float(r), 4)}
        if flat:
            entry["flatness"] = round(float(flatness), 4)
        placed.append(entry)
    return placed


def _place_off_centre(cell: _Cell, clearance: float, n: int = 12):
    """Of ``n`` random admissible centres, the one farthest from the cell centre."""
    cands = [cell.sample_centre(clearance) for _ in range(n)]
    cands = [c for c in cands if c is not None]
    if not cands:
        return None
    return max(cands, key=lambda c: float(np.linalg.norm(c - cell.centre)))


def _place_mitochondria(
    cell: _Cell, count, radius, length_range, gap, tries=300, bend=0.25, radius_range=None
):
    """Place tubular mitochondria (persistent random walks of ``bend`` rad per 0.1 µm).

    ``radius_range`` (µm, optional): each tube draws its own radius from it (from a
    separate stream, so the cell's other draws are unchanged); else all have ``radius``.
    """
    placed = []
    r_rng = _side_rng(cell.rng, 11) if radius_range else None
    for _ in range(count):
        if radius_range:
            radius = float(r_rng.uniform(*radius_range))
        for _ in range(tries):
            length = cell.rng.uniform(*length_range)
            start = cell.sample_centre(radius + gap)
            if start is None:
                return placed
            pts = _random_path(start, _random_unit(cell.rng), length, 0.1, bend, cell.rng)
            if cell.fits(pts, radius, gap):
                cell.commit(pts, radius)
                cell.paint_tube(pts, radius, "mitochondrion")
                placed.append({"length_um": round(float(length), 4), "radius_um": round(radius, 4)})
                break
    return placed


def _clearance_dirs(dirs, d, min_angle_deg):
    return all(np.degrees(np.arccos(np.clip(d @ e, -1, 1))) >= min_angle_deg for e in dirs)


def _filopodia(cell: _Cell, count, scale, margin, used_dirs):
    out = []
    rng = cell.rng
    v = cell.g.v
    for _ in range(count):
        for _ in range(200):
            d = _random_unit(rng)
            if not _clearance_dirs(used_dirs, d, 30):
                continue
            radius = max(rng.uniform(0.1, 0.15) * scale, 0.6 * v)
            length = rng.uniform(1.0, 2.5) * scale
            s = cell.surface_distance(d)
            start = cell.centre + (s - 0.25 * scale) * d
            pts = _random_path(start, d, length + 0.25 * scale, 0.1, 0.06, rng)
            # shorten to fit the sample, keeping at least 1 µm (scaled)
            ok = cell.g.inside_sample(pts, margin + radius)
            if not ok.all():
                first_bad = int(np.argmin(ok))
                pts = pts[:first_bad]
                if len(pts) < 2:
                    continue
            seg = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
            if seg - 0.25 * scale < 0.999 * scale:
                continue
            radii = np.linspace(radius, 0.7 * radius, len(pts))
            radii = np.maximum(radii, 0.6 * v)
            cell.paint_tube(pts, radii, "filopodium", where=("ice",))
            used_dirs.append(d)
            out.append(
                {
                    "type": "filopodium",
                    "length_um": round(float(seg - 0.25 * scale), 4),
                    "thickness_um": round(2 * float(radius), 4),
                    "direction": d.round(4).tolist(),
                }
            )
            break
    return out


def _lamellipodium(cell: _Cell, scale, margin, used_dirs):
    rng = cell.rng
    v = cell.g.v
    for _ in range(200):
        d = _random_unit(rng)
        if not _clearance_dirs(used_dirs, d, 50):
            continue
        n = _unit(np.cross(d, _random_unit(rng)))
        w = np.cross(d, n)
        thick = max(rng.uniform(0.2, 0.3) * scale, 1.2 * v)
        width = rng.uniform(1.8, 2.4) * scale
        length = rng.uniform(1.0, 1.6) * scale
        s = cell.surface_distance(d)
        p0 = cell.centre + s * d
        # shorten until the sheet's corners lie in the sample
        while length >= 0.8 * scale:
            corners = np.array(
                [
                    p0 + length * d,
                    p0 + 0.7 * length * d + width / 2 * w,
                    p0 + 0.7 * length * d - width / 2 * w,
                ]
            )
            if cell.g.inside_sample(corners, margin + thick).all():
                break
            length *= 0.9
            width *= 0.95
        else:
            continue
        reach = length + width / 2 + thick
        sl = cell.g.sphere_box(p0 + 0.4 * length * d, reach)
        z, y, x = cell.g.coords(sl)
        pz, py, px = z - p0[0], y - p0[1], x - p0[2]
        sd = pz * d[0] + py * d[1] + px * d[2]
        sw = pz * w[0] + py * w[1] + px * w[2]
        sn = pz * n[0] + py * n[1] + px * n[2]
        curl = rng.uniform(-0.15, 0.15) / scale
        sn = sn - curl * sw**2
        edge = 0.08 * scale * cell.shape_noise[sl]
        outline = np.where(
            sd >= 0, (sd / length) ** 2 + (sw / (width / 2)) ** 2, (sw / (width / 2)) ** 2
        )
        sheet = (outline + edge <= 1) & (sd >= -0.4 * scale) & (np.abs(sn) <= thick / 2)
        cell.paint(sl, sheet, "lamellipodium", where=("ice",))
        used_dirs.append(d)
        return {
            "type": "lamellipodium",
            "length_um": round(float(length), 4),
            "thickness_um": round(float(thick), 4),
            "width_um": round(float(width), 4),
            "direction": d.round(4).tolist(),
        }
    return None


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


# --------------------------------------------------------------------------- projections


def tilt_angles(n: int, tilt_range_deg: float | None = None) -> np.ndarray:
    """Projection angles of a tilt series.

    Parameters
    ----------
    n : int
        Number of projections.
    tilt_range_deg : float, optional
        None: full rotation, ``n`` angles evenly over [0°, 180°) (capillary mount).
        Otherwise a symmetric tilt series from −range to +range degrees, both included
        (flat-grid mount, missing wedge).

    Returns
    -------
    ndarray, shape (n,), float64
        Angles in radians.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"need at least one angle, got n={n}")
    if tilt_range_deg is None:
        return np.linspace(0.0, np.pi, n, endpoint=False)
    r = float(tilt_range_deg)
    if not 0 <= r <= 90:
        raise ValueError(f"tilt_range_deg must be in [0, 90], got {r}")
    return np.deg2rad(np.linspace(-r, r, n))


def _rotated_sums(vol: np.ndarray, theta: float, workers: int) -> np.ndarray:
    """Sum over rows of each z-slice rotated like ``skimage.transform.radon`` (circle=True)."""
    n = vol.shape[1]
    cc = n // 2
    cos_a, sin_a = np.cos(theta), np.sin(theta)
    # output (z, r, c) samples input (z, y', x') with
    # y' - cc = -sin (c - cc) + cos (r - cc),  x' - cc = cos (c - cc) + sin (r - cc)
    mat = np.array([[1, 0, 0], [0, cos_a, -sin_a], [0, sin_a, cos_a]])
    offset = np.array([0.0, cc, cc]) - mat @ np.array([0.0, cc, cc])

    def run(sl):
        out = ndi.affine_transform(vol[sl], mat, offset=offset, order=1, mode="constant", cval=0.0)
        return out.sum(axis=1, dtype=np.float64)

    if workers <= 1 or vol.shape[0] < 2 * workers:
        return run(slice(None))
    bounds = np.linspace(0, vol.shape[0], workers + 1).astype(int)
    slabs = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(workers) as ex:
        return np.concatenate(list(ex.map(run, slabs)), axis=0)


def project(
    lac: Volume,
    theta: np.ndarray,
    *,
    photons: float | None = 2000,
    blur_nm: float = 0.0,
    jitter_px: float = 0.0,
    n_flats: int = 10,
    n_darks: int = 10,
    dark_counts: float = 20.0,
    seed: int = 0,
) -> Projections:
    """Raw parallel-beam tilt series of a LAC volume (Beer–Lambert + detector).

    Parameters
    ----------
    lac : Volume
        ``(z, y, x)`` LAC in µm⁻¹, zero outside the cylinder inscribed in the ``x``–``y``
        square; ``y`` and ``x`` sizes and voxel sizes equal.
    theta : ndarray, shape (angles,)
        Projection angles in radians (see :func:`tilt_angles`).
    photons : float or None
        Mean open-beam counts per pixel. None or inf: noise-free (no Poisson noise, no
        beam fluctuation, constant darks) at a nominal flat level of 10 000 counts.
    blur_nm : float
        Sigma (nm) of the zone-plate blur, a 2D Gaussian applied to each transmission image.
    jitter_px : float
        RMS (pixels, per axis) of random per-projection misalignment, applied with
        ``scipy.ndimage.shift``; zero-mean, rescaled so the RMS is exactly ``jitter_px``.
    n_flats, n_darks : int
        Number of flat (open beam) and dark frames.
    dark_counts : float
        Mean dark counts per pixel, added (Poisson) to projections and flats.
    seed : int
        Random seed.

    Returns
    -------
    Projections
        ``data`` float32 ``(angles, z, x)`` counts ``= Poisson(B g_i T) + Poisson(dark)``
        where ``T = exp(-radon(lac[z]) * pixel_um)`` (``skimage.transform.radon`` geometry,
        rotation axis at column ``x // 2``), ``B`` the smooth beam profile (±2 %) and
        ``g_i`` a ±0.5 % beam intensity per frame; ``flats`` ``(n_flats, z, x)`` =
        ``Poisson(B g_k) + Poisson(dark)``; ``darks`` ``(n_darks, z, x)``; ``pixel_nm`` =
        voxel size. ``meta``: ``shifts_px`` (list of ``[drow, dcol]``: the content of
        projection *i* was moved by that many pixels), ``beam_gain`` (``g_i``),
        ``flat_gain`` (``g_k``), ``photons``, ``noise_free``,
        ``blur_nm``, ``jitter_px``, ``dark_counts``, ``seed``, ``rotation_axis_col``,
        ``geometry`` and ``sample`` (cell type, seed and condition of the volume).
    """
    data = np.asarray(lac.data, dtype=np.float32)
    nz, ny, nx = data.shape
    if ny != nx:
        raise ValueError(f"the x–y plane must be square, got volume shape {data.shape}")
    vz, vy, vx = lac.voxel_nm
    if not (np.isclose(vy, vx) and np.isclose(vz, vx)):
        raise ValueError(f"projection needs isotropic voxels, got {lac.voxel_nm} nm")
    theta = np.asarray(theta, dtype=float).ravel()
    pixel_um = vx / 1000.0
    noise_free = photons is None or not np.isfinite(photons)
    if not noise_free and photons <= 0:
        raise ValueError(f"photons must be positive, got {photons}")
    rng = np.random.default_rng(seed)
    level = _NOISE_FREE_FLAT if noise_free else float(photons)

    beam = level * (1 + 0.02 * _smooth_noise((1, nz, nx), max(nx / 6, 1.0), rng)[0])
    if noise_free:
        gains = np.ones(len(theta))
        flat_gains = np.ones(n_flats)
    else:
        gains = 1 + 0.005 * rng.standard_normal(len(theta))
        flat_gains = 1 + 0.005 * rng.standard_normal(n_flats)
    shifts = np.zeros((len(theta), 2))
    if jitter_px > 0 and len(theta) > 1:
        raw = rng.standard_normal((len(theta), 2))
        raw -= raw.mean(axis=0)
        raw /= np.sqrt((raw**2).mean(axis=0))
        shifts = raw * float(jitter_px)
    sigma_px = float(blur_nm) / vx if blur_nm else 0.0

    def detect(mean):
        if noise_free:
            return mean + dark_counts
        return rng.poisson(mean) + rng.poisson(dark_counts, mean.shape)

    workers = max(1, min(os.cpu_count() or 1, 8))
    out = np.empty((len(theta), nz, nx), dtype=np.float32)
    for i in progress(range(len(theta)), len(theta), "projecting"):
        line = _rotated_sums(data, float(theta[i]), workers)
        trans = np.exp(-line * pixel_um)
        if sigma_px > 0:
            trans = ndi.gaussian_filter(trans, sigma_px, mode="nearest")
        if np.any(shifts[i]):
            trans = ndi.shift(trans, shifts[i], order=1, mode="nearest")
        out[i] = detect(beam * gains[i] * trans)
    flats = np.stack([detect(beam * g) for g in flat_gains]).astype(np.float32)
    if noise_free:
        darks = np.full((n_darks, nz, nx), dark_counts, dtype=np.float32)
    else:
        darks = rng.poisson(dark_counts, (n_darks, nz, nx)).astype(np.float32)
    sample = {k: lac.meta[k] for k in ("cell_type", "seed", "condition") if k in lac.meta}
    meta = {
        "geometry": "parallel",
        "rotation_axis_col": float(nx // 2),
        "shifts_px": shifts.round(6).tolist(),
        "beam_gain": gains.round(6).tolist(),
        "flat_gain": flat_gains.round(6).tolist(),
        "photons": None if noise_free else float(photons),
        "noise_free": bool(noise_free),
        "blur_nm": float(blur_nm),
        "jitter_px": float(jitter_px),
        "dark_counts": float(dark_counts),
        "seed": int(seed),
        "sample": sample,
    }
    return Projections(out, theta, flats, darks, float(vx), meta)


def degrade(lac: Volume, *, blur_vox: float = 0.9, noise_per_um: float = 0.035, seed: int = 0):
    """An image-domain imaging model: isotropic Gaussian blur and white Gaussian noise.

    A stand-in for a full-rotation reconstruction (no missing wedge) whose point-spread
    function and noise are given directly in the tomogram's terms, so a benchmark can set
    them per variant (zone-plate resolution 25–50 nm → a blur of 0.5–1.5 voxel) without
    projecting and reconstructing. :func:`project` + reconstruction is the physical path
    (Poisson noise, ramp-filtered noise texture, missing wedge at limited tilt).

    Parameters
    ----------
    lac : Volume
        ``(z, y, x)`` LAC in µm⁻¹ (from :func:`simulate_cell`), 0 outside the sample
        cylinder.
    blur_vox : float
        Standard deviation (voxels) of the 3D Gaussian point-spread function (0: none).
    noise_per_um : float
        Standard deviation (µm⁻¹) of the added white Gaussian noise.
    seed : int
        Random seed of the noise.

    Returns
    -------
    Volume
        float32 LAC in µm⁻¹, same grid and voxel size; vacuum outside the sample cylinder
        stays 0 (no data). ``meta`` is the input's plus ``blur_vox`` and
        ``noise_per_um``.
    """
    data = np.asarray(lac.data, dtype=np.float32)
    if blur_vox < 0 or noise_per_um < 0:
        raise ValueError(
            f"blur_vox and noise_per_um must be ≥ 0, got {blur_vox} voxels, {noise_per_um} µm⁻¹"
        )
    out = ndi.gaussian_filter(data, float(blur_vox)) if blur_vox > 0 else data.copy()
    rng = np.random.default_rng(seed)
    out += rng.normal(0.0, float(noise_per_um), out.shape).astype(np.float32)
    ny, nx = data.shape[1:]
    yy, xx = np.ogrid[:ny, :nx]
    r = min(ny, nx) / 2 - 1
    out[:, (yy - (ny - 1) / 2) ** 2 + (xx - (nx - 1) / 2) ** 2 > r * r] = 0.0
    meta = {**lac.meta, "blur_vox": float(blur_vox), "noise_per_um": float(noise_per_um)}
    return Volume(out.astype(np.float32, copy=False), lac.voxel_nm, meta)


# --------------------------------------------------------------------------- annotation

#: Styles of the virtual annotator (:func:`annotate`).
ANNOTATION_MODES = ("scribbles", "interior", "contour", "slices")


def _disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy * yy + xx * xx) <= r * r + 0.5


def _spread(candidates: np.ndarray, weights: np.ndarray, k: int, rng) -> list[int]:
    """Pick up to ``k`` of the sorted ``candidates`` spread evenly through their range."""
    chosen = []
    for chunk, w in zip(np.array_split(candidates, k), np.array_split(weights, k), strict=True):
        if chunk.size:
            p = w / w.sum() if w.sum() > 0 else None
            chosen.append(int(rng.choice(chunk, p=p)))
    return sorted(set(chosen))


def _stroke(region: np.ndarray, rng, max_len: int) -> list[tuple[int, int]]:
    """A wandering brush path (pixel list) that stays inside the 2D ``region``."""
    pts = np.argwhere(region)
    pos = pts[rng.integers(len(pts))].astype(float)
    path = [tuple(int(p) for p in pos)]
    angle = rng.uniform(0, 2 * np.pi)
    fails = 0
    while len(path) < max_len and fails < 8:
        angle += rng.normal(0, 0.3)
        new = pos + (np.sin(angle), np.cos(angle))
        ir = np.rint(new).astype(int)
        if (ir < 0).any() or (ir >= region.shape).any() or not region[tuple(ir)]:
            angle += rng.choice([-1, 1]) * rng.uniform(0.5 * np.pi, np.pi)
            fails += 1
            continue
        pos = new
        path.append((int(ir[0]), int(ir[1])))
    return path


def _dashes(path: list, rng: np.random.Generator) -> list:
    """A brush path broken into dashes (4–10 pixels) with gaps (2–5 pixels), as a hand does."""
    out, i, on = [], 0, True
    while i < len(path):
        n = int(rng.integers(4, 11)) if on else int(rng.integers(2, 6))
        if on:
            out.extend(path[i : i + n])
        i += n
        on = not on
    return out or path[:1]


def _outline_arc(region: np.ndarray, rng: np.random.Generator, rim: bool = False):
    """Half of the band 1–2 voxels outside each connected piece of a 2D ``region``.

    Returns ``(outside, inside)`` boolean masks: ``outside`` is the band on a random half
    of each piece's circumference; ``inside`` (only with ``rim``, else empty) is the
    piece's own outermost ring of voxels (those with a 4-neighbour outside ``region``) on
    the same half. The random draws do not depend on ``rim``.
    """
    out = np.zeros(region.shape, dtype=bool)
    inner = np.zeros(region.shape, dtype=bool)
    edge = region & ~ndi.binary_erosion(region, _disk(1), border_value=1) if rim else None
    pieces, n = ndi.label(region)
    for i in range(1, n + 1):
        piece = pieces == i
        band = ndi.binary_dilation(piece, _disk(2)) & ~piece
        band &= ~region
        yy, xx = np.nonzero(band)
        if yy.size == 0:
            continue
        cy, cx = np.argwhere(piece).mean(axis=0)
        start = rng.uniform(-np.pi, np.pi)

        def half(yy, xx, cy=cy, cx=cx, start=start):
            return np.mod(np.arctan2(yy - cy, xx - cx) - start, 2 * np.pi) < np.pi

        keep = half(yy, xx)
        out[yy[keep], xx[keep]] = True
        if rim:
            ry, rx = np.nonzero(piece & edge)
            keep = half(ry, rx)
            inner[ry[keep], rx[keep]] = True
    return out, inner


def annotate(
    fine_labels: Volume,
    classes: list[str],
    *,
    slices_per_class: int = 3,
    seed: int = 0,
    mode: str = "scribbles",
    labels: LabelTable | None = None,
    outline: bool = True,
    rim: bool = False,
    margin: int = 2,
    z_slices=None,
) -> Volume:
    """Sparse training annotations painted like a person in napari (a virtual annotator).

    Parameters
    ----------
    fine_labels : Volume
        uint8 ``(z, y, x)`` fine truth labels (from :func:`simulate_cell`).
    classes : list of str
        Segmentation classes, e.g. ``["ice", "cytoplasm", "nucleus", "vacuole",
        "lipid_droplet", "mitochondrion"]``; fine labels map to them with
        ``LabelTable.to_classes``.
    slices_per_class : int
        ``"scribbles"``: number of z-slices annotated per class, spread through the
        slices where the class is present (within the cell's z-range when possible).
        ``"slices"``: number of z-slices spread through the cell, fully labelled.
    seed : int
        Random seed.
    mode : {"scribbles", "interior", "contour", "slices"}
        ``"scribbles"``: a few brush strokes (disk brush of radius 0–2 voxels) per chosen
        slice, kept inside the class region eroded by the brush, so strokes do not cross
        boundaries (with ``outline``/``rim`` as below). ``"interior"``: how people mostly
        paint: dashed strokes (gaps of 2–5 voxels) kept ``margin`` voxels away from every
        edge, nothing at boundaries; a class too thin for the margin is painted along its
        midline with a 1-voxel pen (thin tubes get a few dozen voxels). ``"contour"``:
        outlines only: a 1-voxel pen along the inside of every piece of each class in
        the chosen slices (the cell's outline for the cytoplasm), ice by interior
        strokes. ``"slices"``: every voxel of the chosen slices gets its class (extra
        slices are added for classes missing from them).
    labels : LabelTable, optional
        Label table (default :func:`sxtflow.labels.default_labels`).
    outline : bool
        ``"scribbles"`` only: in each slice chosen for an organelle class, also paint an
        arc (half the circumference) of the band 1–2 voxels outside the organelle with the
        class found there (usually cytoplasm), as annotators do around objects so the
        classifier learns that the blurred rim of a dense object is not another class.
    rim : bool
        ``"scribbles"`` only: annotate both sides of each traced boundary, as an annotator
        who paints an object up to its edge. With ``outline``, the organelle's own
        outermost ring of voxels on the same arc gets its class; and in each slice chosen
        for ice, an arc of the cell's outline is traced too (ice band 1–2 voxels outside
        the cell, the cell's outermost ring inside with its class there). Without it the
        traced voxels all lie outside the boundary, which teaches the classifier to
        shrink objects by their partial-volume rim (see ``docs/segmentation.md``).
    margin : int
        ``"interior"`` (and the ice of ``"contour"``): distance in voxels (in-plane) that
        strokes keep from the class's edges (1–3 as people do).
    z_slices : sequence of int, optional
        Not ``"slices"`` mode: paint exactly these z-slices (every class present in
        each) instead of choosing ``slices_per_class`` per class, e.g. the slices
        ``annotation_suggestions.json`` proposes.

    Returns
    -------
    Volume
        uint8 ``(z, y, x)``: class values (``labels.value(class)``) where annotated,
        0 elsewhere. ``meta``: ``kind``, ``mode``, ``classes``, ``class_values``,
        ``slices`` (class → z indices of its own strokes; in ``"slices"`` mode ``"all"``
        too), ``outline_slices`` (class → z indices where it was painted as an outline),
        ``seed``, ``slices_per_class``, ``rim``; ``margin`` in ``"interior"`` mode.
    """
    table = labels or default_labels()
    if mode not in ANNOTATION_MODES:
        raise ValueError(
            f"unknown annotation mode {mode!r}; use one of {', '.join(map(repr, ANNOTATION_MODES))}"
        )
    if int(margin) < 0:
        raise ValueError(f"margin must be ≥ 0 voxels, got {margin}")
    if slices_per_class < 1:
        raise ValueError(f"slices_per_class must be ≥ 1, got {slices_per_class}")
    rng = np.random.default_rng(seed)
    rim_rng = np.random.default_rng([int(seed), 1])  # the strokes do not depend on rim
    cls = table.to_classes(fine_labels.data, classes)
    values = {c: table.value(c) for c in classes}
    nz = cls.shape[0]
    out = np.zeros(cls.shape, dtype=np.uint8)
    cell_vals = [v for c, v in values.items() if c != "ice"]
    cell_z = np.flatnonzero(np.isin(cls, cell_vals).any(axis=(1, 2))) if cell_vals else []
    zlo, zhi = (int(cell_z[0]), int(cell_z[-1])) if len(cell_z) else (0, nz - 1)
    chosen: dict[str, list[int]] = {}

    if mode == "slices":
        cand = np.arange(zlo, zhi + 1)
        zs = set(_spread(cand, np.ones(cand.size), slices_per_class, rng))
        for v in values.values():
            area = (cls == v).sum(axis=(1, 2))
            if area.any() and not area[sorted(zs)].any():
                zs.add(int(np.argmax(area)))
        zs = sorted(zs)
        out[zs] = cls[zs]
        for c, v in values.items():
            chosen[c] = [z for z in zs if (cls[z] == v).any()]
        chosen["all"] = zs
    else:
        outlined: set[tuple[int, int]] = set()
        for c, v in values.items():
            mask = cls == v
            if not mask.any():
                continue
            if mode == "scribbles":
                for r in (2, 1, 0):
                    eroded = ndi.binary_erosion(mask, _disk(r)[None], border_value=0) if r else mask
                    area = eroded.sum(axis=(1, 2))
                    if area.sum() >= 20 or r == 0:
                        break
            else:  # kept ``margin`` voxels inside; thin classes fall back to their midline
                for r in range(int(margin), -1, -1):
                    eroded = ndi.binary_erosion(mask, _disk(r)[None], border_value=0) if r else mask
                    area = eroded.sum(axis=(1, 2))
                    if area.sum() >= 20 or r == 0:
                        break
            zc = np.flatnonzero(area)
            inside = zc[(zc >= zlo) & (zc <= zhi)]
            if inside.size >= slices_per_class or inside.size == zc.size:
                zc = inside if inside.size else zc
            if z_slices is None:
                zs = _spread(zc, area[zc].astype(float), slices_per_class, rng)
            else:  # the slices asked for (e.g. suggested by the model) where the class is
                zs = sorted({int(z) for z in z_slices if 0 <= int(z) < nz and mask[int(z)].any()})
                if not zs:
                    continue
            chosen[c] = zs
            contour = mode == "contour" and c != "ice"
            for z in zs:
                target = out[z]
                if contour:  # a 1-voxel pen along the inside of every piece's outline
                    if c == "cytoplasm" and cell_vals:
                        cell = np.isin(cls[z], cell_vals)
                        ring = cell & ~ndi.binary_erosion(cell, _disk(1), border_value=1)
                        ring &= target == 0
                        target[ring] = cls[z][ring]
                    else:
                        ring = mask[z] & ~ndi.binary_erosion(mask[z], _disk(1), border_value=1)
                        target[ring & (target == 0)] = v
                    continue
                region = eroded[z]
                paint = np.zeros(region.shape, dtype=bool)
                brush = r
                if mode == "scribbles":
                    pieces = [region]
                else:
                    # a 3-voxel brush where the region is wide enough for it, else a pen;
                    # a stroke in each object seen in the slice (up to 6, largest first)
                    wide = ndi.binary_erosion(region, _disk(1), border_value=0)
                    brush = 1 if wide.sum() >= 150 else 0
                    region = wide if brush else region
                    lab2, n2 = ndi.label(region)
                    sizes = np.bincount(lab2.ravel(), minlength=n2 + 1)[1:]
                    pieces = [lab2 == i + 1 for i in np.argsort(sizes)[::-1][:6]]
                for piece in pieces:
                    a = int(piece.sum())
                    n_strokes = 1 + (a > 150) + (a > 1500)
                    reach = 0.6 * np.sqrt(a)
                    if mode != "scribbles":  # along elongated objects (a tube lying in-plane)
                        ext = np.ptp(np.argwhere(piece), axis=0)
                        reach = max(reach, 0.8 * float(np.hypot(*ext)))
                    max_len = int(np.clip(reach, 3, 40))
                    for _ in range(n_strokes):
                        path = _stroke(piece, rng, max_len)
                        if mode != "scribbles":
                            path = _dashes(path, rng)
                        for p in path:
                            paint[p] = True
                if brush:
                    paint = ndi.binary_dilation(paint, _disk(brush))
                target[paint & mask[z] & (target == 0)] = v
                if mode != "scribbles":
                    continue
                if outline and c not in ("ice", "cytoplasm"):
                    arc, ring = _outline_arc(mask[z], rng, rim)
                    arc &= target == 0
                    target[arc] = cls[z][arc]
                    outlined.update((int(u), z) for u in np.unique(cls[z][arc]) if u)
                    target[ring & (target == 0)] = v
                elif rim and c == "ice" and cell_vals:
                    # the cell's outline: ice just outside, the cell's own ring inside
                    cell = np.isin(cls[z], cell_vals)
                    arc, ring = _outline_arc(cell, rim_rng, True)
                    arc &= (target == 0) & mask[z]
                    ring &= target == 0
                    target[arc] = v
                    target[ring] = cls[z][ring]
                    outlined.update((int(u), z) for u in np.unique(target[arc | ring]) if u)
    outline_slices: dict[str, list[int]] = {}
    if mode != "slices":
        names = {v: c for c, v in values.items()}
        for u, z in sorted(outlined):
            outline_slices.setdefault(names[u], []).append(z)
    meta = {
        "kind": "annotations",
        "mode": mode,
        "classes": list(classes),
        "class_values": values,
        "slices": chosen,
        "outline_slices": outline_slices,
        "seed": int(seed),
        "slices_per_class": int(slices_per_class),
        "rim": bool(rim),
    }
    if mode == "interior":
        meta["margin"] = int(margin)
    return Volume(out, fine_labels.voxel_nm, meta)
