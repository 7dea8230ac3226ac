"""The simulated cell's grid and painter, and the shapes placed in it: smooth noise, random
rotations and paths, nucleus, heterochromatin, balls, mitochondria, filopodia and
lamellipodia.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.distance import cdist

from ..labels import LabelTable

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
