"""Closed outlines filled with their class before training (:func:`fill_outlines`), and
only where the annotation and the tomogram agree that the inside is that class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import UNLABELLED


@dataclass(frozen=True)
class _Piece:
    """One region a class's outline encloses in one plane (arrays are the plane's ``box``)."""

    axis: int  # the plane's normal
    index: int  # the plane's position along ``axis``
    value: int  # the outline's label value
    box: tuple[slice, slice]  # in-plane bounding box of the outline
    region: np.ndarray  # bool: the enclosed, unannotated voxels
    section: np.ndarray  # bool: the region with its outline (the object's cut)
    depth: np.ndarray  # float: in-plane distance (voxels) to the outside of ``section``
    radius: float  # the largest depth: the object's half-thickness


def fill_outlines(annotation, image=None, *, min_extent=3, margin=2, tolerance=3.0):
    """Closed outlines filled with their class, slice by slice on every axis, where safe.

    People often trace an object's outline on a slice (Amira, napari) instead of painting
    it; a classifier trained on outlines alone learns "the edge of X", not X. On every
    plane of each of the three axes that holds annotated voxels, each class's closed
    outlines are found by 2-D hole filling (:func:`scipy.ndimage.binary_fill_holes`: an
    outline closes when it is 8-connected, the enclosed region is 4-connected). A region in
    which something is annotated is left as it is (another class's strokes are never
    overwritten). The others are filled with the outline's class, unless the outline
    **contains other classes**: a cell traced as cytoplasm on a slice where its nucleus and
    droplets were not outlined. Such an outline is recognised from the annotation in 3-D:
    the outline implies an object reaching ``r`` voxels beyond its plane (``r`` = the
    largest in-plane distance from the outline inward; at distance ``d`` the object's cut
    is the region shrunk by ``r - sqrt(r² - d²)``, a body of revolution), and another
    class's annotated voxel lies inside it. Its region is then filled only where
    (a) no other class's outlined object reaches the plane (each such object taken as its
    filled cut extruded ``±r`` along its plane's normal) and (b) with ``image``, the
    tomogram looks like the rest of the region (within ``tolerance`` robust standard
    deviations of the region's median: an unannotated droplet or vacuole inside the cell
    is not), both grown by ``margin`` voxels. What is unsure stays unlabelled: the fill
    may teach less, not another class. An open stroke stays a stroke; strokes painted
    inside an object enclose nothing. A voxel that two planes would fill with different
    classes (outlines on crossing planes that disagree) stays unlabelled.

    Parameters
    ----------
    annotation : array-like, shape (z, y, x), integer
        Label values; 0 (``UNLABELLED``) = not annotated. Outlines may lie on z-, y- or
        x-planes (any mixture).
    image : array-like, shape (z, y, x), optional
        The tomogram on the annotation's grid, lightly smoothed (e.g. a Gaussian feature
        channel at σ ≈ 1 voxel), in any unit (LAC, µm⁻¹). Anything indexable with ``image[z, y0:y1, x0:x1]`` (and
        the other axes' planes) works; only the planes of outlines that contain other
        classes are read. Without it, test (b) is skipped.
    min_extent : int
        A class's voxels in a plane enclose nothing unless they span at least this many
        rows and columns (a quick skip; 3 is the smallest ring around one voxel).
    margin : int
        Voxels (in-plane) by which the parts left out of a containing outline's fill are
        grown: the blur of their edges and the uncertainty of the objects' extent.
    tolerance : float
        Test (b): voxels further than this many robust standard deviations (1.4826 × the
        median absolute deviation) from the region's median are left out.

    Returns
    -------
    filled : ndarray, shape (z, y, x), same dtype
        The annotation with the enclosed unlabelled regions set to their outline's class.
    counts : dict of int to int
        Voxels filled per label value (only values that gained voxels).

    Examples
    --------
    >>> ann = np.zeros((1, 5, 5), np.uint8)
    >>> ann[0, 1, 1:4] = ann[0, 3, 1:4] = ann[0, 1:4, 1] = ann[0, 1:4, 3] = 3
    >>> filled, counts = fill_outlines(ann)
    >>> int(filled[0, 2, 2]), counts
    (3, {3: 1})
    """
    from scipy import ndimage as ndi

    ann = np.asarray(annotation)
    if ann.ndim != 3:
        raise ValueError(f"annotation must be (z, y, x), got shape {ann.shape}")
    pieces = list(_enclosed(ann, min_extent))
    coords = np.argwhere(ann != UNLABELLED)
    values = ann[tuple(coords.T)]
    contains = [_contains_others(p, coords, values) for p in pieces]
    leaves = [p for p, c in zip(pieces, contains, strict=True) if not c]
    fill = np.zeros(ann.shape, dtype=ann.dtype)
    clash = np.zeros(ann.shape, dtype=bool)
    for p, container in zip(pieces, contains, strict=True):
        keep = p.region
        if container:
            out = _left_out(p, leaves, image, tolerance)
            if margin > 0:
                out = ndi.binary_dilation(out, np.ones((3, 3), bool), iterations=int(margin))
            keep = keep & ~out
        index = _plane_index(p.axis, p.index, p.box)
        f = fill[index]  # a view into fill
        c = clash[index]
        c |= keep & (f != 0) & (f != p.value)
        f[keep & (f == 0)] = p.value
    fill[clash] = 0
    out = ann.copy()
    new = fill != 0
    out[new] = fill[new]
    vals, n = np.unique(fill[new], return_counts=True)
    return out, {int(v): int(k) for v, k in zip(vals, n, strict=True)}


def _plane_index(axis: int, index: int, box=None) -> tuple:
    """Index of the plane ``index`` along ``axis`` (its in-plane ``box`` if given)."""
    idx = [slice(None)] * 3
    idx[axis] = int(index)
    if box is not None:
        a, b = (k for k in range(3) if k != axis)
        idx[a], idx[b] = box
    return tuple(idx)


def _enclosed(ann: np.ndarray, min_extent: int):
    """Every unannotated region a class's outline encloses, plane by plane on each axis."""
    from scipy import ndimage as ndi

    labelled = ann != UNLABELLED
    for axis in range(3):
        used = np.flatnonzero(labelled.any(axis=tuple(a for a in range(3) if a != axis)))
        for i in used:
            plane = np.take(ann, i, axis=axis)
            for v in np.unique(plane):
                if v == UNLABELLED:
                    continue
                mask = plane == v
                rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                if rows[-1] - rows[0] + 1 < min_extent or cols[-1] - cols[0] + 1 < min_extent:
                    continue
                box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                m = mask[box]
                solid = ndi.binary_fill_holes(m)
                holes = solid & ~m
                if not holes.any():
                    continue
                pieces, n = ndi.label(holes)
                busy = np.bincount(pieces[plane[box] != UNLABELLED], minlength=n + 1)
                for k in np.flatnonzero(busy[1:] == 0) + 1:
                    region = pieces == k
                    section = ndi.binary_dilation(region, np.ones((3, 3), bool)) & solid
                    depth = ndi.distance_transform_edt(np.pad(section, 1))[1:-1, 1:-1]
                    yield _Piece(
                        axis, int(i), int(v), box, region, section, depth, float(depth.max())
                    )


def _contains_others(p: _Piece, coords: np.ndarray, values: np.ndarray) -> bool:
    """Whether another class's annotated voxel lies in the object ``p``'s outline implies
    (its cut shrunk by ``r - sqrt(r² - d²)`` at distance ``d`` from the plane)."""
    a, b = (k for k in range(3) if k != p.axis)
    r = p.radius
    sel = (values != p.value) & (np.abs(coords[:, p.axis] - p.index) <= r)
    sel &= (coords[:, a] >= p.box[0].start) & (coords[:, a] < p.box[0].stop)
    sel &= (coords[:, b] >= p.box[1].start) & (coords[:, b] < p.box[1].stop)
    c = coords[sel]
    if not len(c):
        return False
    d = np.abs(c[:, p.axis] - p.index).astype(float)
    depth = p.depth[c[:, a] - p.box[0].start, c[:, b] - p.box[1].start]
    return bool(np.any((depth > 0) & (depth >= r - np.sqrt(np.maximum(r * r - d * d, 0.0)))))


def _left_out(p: _Piece, leaves: list[_Piece], image, tolerance: float) -> np.ndarray:
    """Voxels of a containing outline's box not to fill (before the margin): other
    classes' outlined objects reaching its plane and, with ``image``, voxels unlike the
    rest of its region."""
    out = np.zeros(p.region.shape, dtype=bool)
    for q in leaves:
        if q.value != p.value:
            out |= _extruded_cut(q, p.axis, p.index, p.box)
    if image is not None:
        plane = np.asarray(image[_plane_index(p.axis, p.index, p.box)], dtype=np.float32)
        ref = plane[p.region & ~out]
        if ref.size >= 10:
            med = np.median(ref)
            spread = 1.4826 * np.median(np.abs(ref - med))
            out |= p.region & (np.abs(plane - med) > tolerance * spread)
    return out


def _extruded_cut(q: _Piece, axis: int, index: int, box) -> np.ndarray:
    """Where ``q``'s cut, extruded ``±q.radius`` along its plane's normal, meets the plane
    ``index`` along ``axis`` (bool, the shape of that plane's ``box``)."""
    a, b = (k for k in range(3) if k != axis)
    grid = {
        axis: np.array(index).reshape(1, 1),
        a: np.arange(box[0].start, box[0].stop).reshape(-1, 1),
        b: np.arange(box[1].start, box[1].stop).reshape(1, -1),
    }
    qa, qb = (k for k in range(3) if k != q.axis)
    near = np.abs(grid[q.axis] - q.index) <= q.radius
    u = grid[qa] - q.box[0].start
    v = grid[qb] - q.box[1].start
    inside = (u >= 0) & (u < q.section.shape[0]) & (v >= 0) & (v < q.section.shape[1])
    hit = q.section[np.clip(u, 0, q.section.shape[0] - 1), np.clip(v, 0, q.section.shape[1] - 1)]
    return np.broadcast_to(
        near & inside & hit, (box[0].stop - box[0].start, box[1].stop - box[1].start)
    )
