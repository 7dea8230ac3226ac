"""The virtual annotator: sparse scribbles, interiors, contours or slices from a truth, as a
person paints them in napari (:func:`annotate`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..io import Volume
from ..labels import LabelTable, default_labels

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
    if mode == "slices":
        chosen = _annotate_slices(out, cls, values, (zlo, zhi), slices_per_class, rng)
        outlined: set[tuple[int, int]] = set()
    else:
        chosen, outlined = {}, set()
        for c, v in values.items():
            mask = cls == v
            if not mask.any():
                continue
            eroded, area, r = _paintable(mask, mode, margin)
            zs = _class_slices(area, mask, (zlo, zhi), slices_per_class, z_slices, rng)
            if zs is None:
                continue
            chosen[c] = zs
            for z in zs:
                if mode == "contour" and c != "ice":
                    _paint_contour(out[z], cls[z], mask[z], c, v, cell_vals)
                    continue
                _paint_strokes(out[z], eroded[z], mask[z], v, mode, r, rng)
                if mode != "scribbles":
                    continue
                if outline and c not in ("ice", "cytoplasm"):
                    arc, ring = _outline_arc(mask[z], rng, rim)
                    arc &= out[z] == 0
                    out[z][arc] = cls[z][arc]
                    outlined.update((int(u), z) for u in np.unique(cls[z][arc]) if u)
                    out[z][ring & (out[z] == 0)] = v
                elif rim and c == "ice" and cell_vals:
                    # the cell's outline: ice just outside, the cell's own ring inside
                    target = out[z]
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


def _annotate_slices(out, cls, values, zrange, slices_per_class, rng) -> dict[str, list[int]]:
    """Mode ``"slices"``: whole z-slices spread over the cell (in place); the slices per class."""
    zlo, zhi = zrange
    cand = np.arange(zlo, zhi + 1)
    zs = set(_spread(cand, np.ones(cand.size), slices_per_class, rng))
    for v in values.values():
        area = (cls == v).sum(axis=(1, 2))
        if area.any() and not area[sorted(zs)].any():
            zs.add(int(np.argmax(area)))
    zs = sorted(zs)
    out[zs] = cls[zs]
    chosen = {c: [z for z in zs if (cls[z] == v).any()] for c, v in values.items()}
    chosen["all"] = zs
    return chosen


def _paintable(mask, mode, margin):
    """The part of a class the pen stays in: ``(region, area per z-slice, erosion radius)``.

    Scribbles keep up to 2 voxels from the edges, interiors ``margin``; thin classes fall back
    to their midline (radius 0).
    """
    radii = (2, 1, 0) if mode == "scribbles" else range(int(margin), -1, -1)
    for r in radii:
        eroded = ndi.binary_erosion(mask, _disk(r)[None], border_value=0) if r else mask
        area = eroded.sum(axis=(1, 2))
        if area.sum() >= 20 or r == 0:
            break
    return eroded, area, r


def _class_slices(area, mask, zrange, slices_per_class, z_slices, rng):
    """The z-slices a class is painted in (spread, weighted by its area; within the cell's
    z-range when it has enough there), or those asked for where the class is (None: none)."""
    zlo, zhi = zrange
    zc = np.flatnonzero(area)
    inside = zc[(zc >= zlo) & (zc <= zhi)]
    if inside.size >= slices_per_class or inside.size == zc.size:
        zc = inside if inside.size else zc
    if z_slices is None:
        return _spread(zc, area[zc].astype(float), slices_per_class, rng)
    # the slices asked for (e.g. suggested by the model) where the class is
    nz = mask.shape[0]
    zs = sorted({int(z) for z in z_slices if 0 <= int(z) < nz and mask[int(z)].any()})
    return zs or None


def _paint_contour(target, cls_z, mask_z, c, v, cell_vals) -> None:
    """Mode ``"contour"``: a 1-voxel pen along the inside of every piece's outline (in place)."""
    if c == "cytoplasm" and cell_vals:
        cell = np.isin(cls_z, cell_vals)
        ring = cell & ~ndi.binary_erosion(cell, _disk(1), border_value=1)
        ring &= target == 0
        target[ring] = cls_z[ring]
    else:
        ring = mask_z & ~ndi.binary_erosion(mask_z, _disk(1), border_value=1)
        target[ring & (target == 0)] = v


def _paint_strokes(target, region, mask_z, v, mode, r, rng) -> None:
    """Strokes of class value ``v`` in one slice's ``region`` (in place): scribbles with a
    brush of radius ``r``; interiors a 3-voxel brush where the region is wide enough, else
    a pen, dashed, a stroke in each object seen in the slice (up to 6, largest first)."""
    paint = np.zeros(region.shape, dtype=bool)
    brush = r
    if mode == "scribbles":
        pieces = [region]
    else:
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
    target[paint & mask_z & (target == 0)] = v
