"""Inter-organelle relations: surface-to-surface distances, contacts, radial position.

Conventions
-----------
* Objects are the instances of :func:`sxtflow.quantify.instances` (26-connected components
  of each class); the cell is a boolean mask (e.g. ``measure._cell_mask``).
* The **surface voxels** of an object are its voxels with at least one of their 6 face
  neighbours outside the object. Each voxel is a box of the voxel size; the object's surface
  lies on the outer faces of its surface voxels.
* **Surface-to-surface distance** (µm) between objects A and B: the smallest Euclidean
  distance between a surface-voxel centre of A and one of B, minus the extent of one voxel
  along the line joining them (half a voxel for each side; ``|d ⊙ s| / |d|`` for a
  displacement ``d`` and voxel size ``s``, i.e. voxels treated as ellipsoids, which is
  unbiased for smooth surfaces in every direction), clipped at 0. Face-adjacent objects are
  0 µm apart, edge- and corner-adjacent ones 0.41 and 0.73 voxel; a gap of ``k`` empty
  voxels along an axis reads ``k`` voxels. On voxelised balls it is within ±½ voxel.
  This equals the Euclidean distance transform of B sampled at A's surface voxels (with the
  same half-voxel correction), computed with a k-d tree over B's surface voxels, so memory
  scales with surfaces rather than volumes and there is no search radius.
* **Membrane distance** (µm): the same distance from the object's surface voxels to the
  voxels just outside the cell (the one-voxel shell around the cell mask); 0 for an object
  touching the membrane. The volume border counts as membrane.
* **Contact**: a surface voxel of A is in contact with class C when its distance to C is
  ≤ ``contact_distance_um`` (default one voxel, the practical minimum at SXT voxel sizes;
  it includes every face-, edge- or corner-adjacent voxel and a gap of one empty voxel).
  ``contact_<C>_area_um2`` = A's surface area × (contact surface voxels / surface voxels);
  ``contacts_<C>`` = number of distinct C objects within that distance.
* **Radial position**: along the ray from the cell's centroid through the object's
  centroid, the object's distance from the cell centroid divided by the distance at which the
  ray leaves the cell (0 = centre, 1 = membrane; NaN if the object's centroid is outside the
  cell).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from ..progress import progress

#: Columns always present in :func:`object_relations` (per-class columns follow).
RELATION_BASE_COLUMNS = ["object_id", "class", "membrane_distance_um", "radial_position"]

_FACE6 = ndimage.generate_binary_structure(3, 1)


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (the volume border is outside).

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x)

    Returns
    -------
    ndarray of bool, shape (z, y, x)

    Examples
    --------
    >>> m = np.zeros((5, 5, 5), bool); m[1:4, 1:4, 1:4] = True
    >>> int(surface_voxels(m).sum())  # a 3×3×3 cube: all but its centre
    26
    """
    from ._measure import _erode6

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:  # the fast erosion is 3D
        inner = ndimage.binary_erosion(np.pad(mask, 1), structure=_FACE6)[1:-1, 1:-1, 1:-1]
    else:
        inner = _erode6(mask)
    return mask & ~inner


def _gap(p: np.ndarray, q: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Surface-to-surface gap (µm) between voxels centred at µm points p and q (n, 3)."""
    d = np.abs(p - q)
    dist = np.sqrt((d * d).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        extent = np.where(dist > 0, np.sqrt(((d * spacing) ** 2).sum(axis=1)) / dist, 0.0)
    return np.clip(dist - extent, 0.0, None)


def _nearest_gaps(tree: cKDTree, pts: np.ndarray, p: np.ndarray, spacing, reach: float):
    """Per-point gap (µm; inf where the nearest point is farther than ``reach``) and the
    smallest gap over all points (exact; NaN for an empty tree).

    Queries are bounded (``distance_upper_bound``): first by ``reach`` (contacts); if nothing
    is that close, by the nearest distance of a subsample of ~100 points (an upper bound of
    the minimum), querying the target's points against a tree of ``p``: unbounded
    nearest-neighbour queries from inside a closed surface cost seconds on large surfaces.
    """
    n = len(pts)
    if n == 0 or len(p) == 0:
        return np.full(len(p), np.inf), np.nan
    _, j = tree.query(p, distance_upper_bound=reach)
    near = j < n
    g = np.full(len(p), np.inf)
    g[near] = _gap(p[near], pts[j[near]], spacing)
    if near.any():
        return g, float(g.min())
    # an upper bound U from a subsample of p; then the other way round: every target point
    # against a tree of p, bounded by U (target points far from this object prune at the
    # root, whereas points inside a closed target surface, e.g. the membrane, do not)
    sub = p[:: max(1, len(p) // 100)]
    d_sub, _ = tree.query(sub)
    bound = float(d_sub.min()) * (1 + 1e-9) + 1e-12
    # only target points within U of p's bounding box can be within U of p: the others
    # (most of a membrane's) are left out before the tree is asked
    lo, hi = p.min(axis=0), p.max(axis=0)
    out = np.maximum(lo - pts, 0.0) + np.maximum(pts - hi, 0.0)
    cand = np.flatnonzero((out * out).sum(axis=1) <= bound * bound * (1 + 1e-6))
    own = cKDTree(p)
    _, j = own.query(pts[cand], distance_upper_bound=bound)
    found = j < len(p)
    if not found.any():
        return g, np.nan
    return g, float(_gap(p[j[found]], pts[cand[found]], spacing).min())


def _ray_exit(cell: np.ndarray, origin: np.ndarray, direction: np.ndarray, spacing) -> float:
    """Distance (µm) from ``origin`` (µm) along ``direction`` at which the ray leaves ``cell``."""
    step = 0.25 * float(np.min(spacing))
    shape = np.asarray(cell.shape)
    t = 0.0
    while True:
        t_next = t + step
        k = np.round((origin + t_next * direction) / spacing).astype(int)
        if np.any(k < 0) or np.any(k >= shape) or not cell[tuple(k)]:
            return t + 0.5 * step
        t = t_next


def object_relations(
    instance_labels: np.ndarray,
    table: pd.DataFrame,
    spacing_um,
    cell_mask: np.ndarray | None = None,
    *,
    targets: Iterable[str] | None = None,
    contact_distance_um: float | None = None,
    surface_um2: dict[int, float] | None = None,
    object_slices: list | None = None,
    cell_box: tuple | None = None,
) -> pd.DataFrame:
    """Distances, contacts and radial position of every object.

    Parameters
    ----------
    instance_labels : ndarray of int, shape (z, y, x)
        Instance image (0 = background), as from :func:`sxtflow.quantify.instances`.
    table : pandas.DataFrame
        One row per instance with ``object_id`` and ``class``.
    spacing_um : sequence of 3 floats
        Voxel size (z, y, x) in µm.
    cell_mask : ndarray of bool, shape (z, y, x), optional
        The cell. Default: every instance voxel, enclosed holes filled.
    targets : iterable of str, optional
        Classes to measure distances and contacts to (default: every class of ``table``).
        Leave out classes that fill the cell (cytoplasm), whose distance is always 0.
    contact_distance_um : float, optional
        Contact threshold in µm (default: the largest voxel size, one voxel).
    surface_um2 : dict of int to float, optional
        Surface area (µm²) per object id, e.g. ``surface_um2`` of
        :func:`sxtflow.quantify.measure_objects`; default: the Taubin-smoothed mesh area.
    object_slices : list of (tuple of slice or None), optional
        ``scipy.ndimage.find_objects(instance_labels)`` when the caller has it already;
        found here otherwise (a pass over the volume).
    cell_box : (tuple of 3 slice or None, ndarray of shape (3,)), optional
        The cell mask's bounding box (``mask_box``) and its centroid in voxels
        (``mask_centroid``) when the caller has them already; found here otherwise.

    Returns
    -------
    pandas.DataFrame
        One row per object (order of ``table``): ``object_id``, ``class``,
        ``membrane_distance_um``, ``radial_position``, and for each target class C:
        ``dist_<C>_um`` (surface-to-surface distance to the nearest C object other than
        itself; NaN when there is none), ``contact_<C>_area_um2`` and ``contacts_<C>``
        (count of C objects within ``contact_distance_um``). See the module docstring.

    Examples
    --------
    >>> lab = np.zeros((1, 1, 12), np.int32); lab[0, 0, 1:3] = 1; lab[0, 0, 6:9] = 2
    >>> t = pd.DataFrame({"object_id": [1, 2], "class": ["a", "b"]})
    >>> r = object_relations(lab, t, (1.0, 1.0, 1.0), np.ones(lab.shape, bool),
    ...                      surface_um2={1: 1.0, 2: 1.0})
    >>> float(r.loc[0, "dist_b_um"]), int(r.loc[0, "contacts_b"])  # 3 empty voxels between
    (3.0, 0)
    """
    inst, spacing, cell_mask, contact = _check_relation_inputs(
        instance_labels, spacing_um, cell_mask, contact_distance_um
    )
    ids = [int(i) for i in table["object_id"]]
    names = [str(c) for c in table["class"]]
    target_names = list(dict.fromkeys(names)) if targets is None else list(targets)
    surf, areas, centroids = _object_surfaces(inst, ids, spacing, surface_um2, object_slices)
    trees = _target_trees(ids, names, surf, target_names)
    shell_tree, cell_centroid = _cell_shell(cell_mask, spacing, cell_box)
    # the search for contacting objects may reach this far between voxel centres
    reach = contact + float(np.sqrt((spacing**2).sum()))
    rows = []
    for oid, name in progress(list(zip(ids, names, strict=True)), len(ids), "relations"):
        p = surf[oid]
        row: dict = {"object_id": oid, "class": name}
        if len(p) and shell_tree is not None:
            _, mind = _nearest_gaps(shell_tree, shell_tree.data, p, spacing, reach)
            row["membrane_distance_um"] = mind
        else:
            row["membrane_distance_um"] = np.nan
        row["radial_position"] = _radial(cell_mask, cell_centroid, centroids[oid], spacing)
        for c in target_names:
            dist, area, count = _class_relation(
                p, oid, c == name, trees.get(c), areas[oid], spacing, contact, reach
            )
            row[f"dist_{c}_um"] = dist
            row[f"contact_{c}_area_um2"] = area
            row[f"contacts_{c}"] = count
        rows.append(row)
    cols = list(RELATION_BASE_COLUMNS)
    for c in target_names:
        cols += [f"dist_{c}_um", f"contact_{c}_area_um2", f"contacts_{c}"]
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({f"contacts_{c}": int for c in target_names} | {"object_id": int})


def _check_relation_inputs(instance_labels, spacing_um, cell_mask, contact_distance_um):
    """``(instances, spacing µm (3,), cell mask, contact distance µm)``, checked."""
    inst = np.asarray(instance_labels)
    if inst.ndim != 3:
        raise ValueError(f"instance_labels must be 3D (z, y, x), got shape {inst.shape}")
    spacing = np.asarray(spacing_um, dtype=float).reshape(-1)
    if spacing.size == 1:
        spacing = np.repeat(spacing, 3)
    if spacing.size != 3 or np.any(spacing <= 0):
        raise ValueError(f"spacing_um must be 3 positive floats, got {spacing_um}")
    if cell_mask is None:
        from ._measure import fill_holes  # scipy's result, in one labelling

        cell_mask = fill_holes(inst > 0)
    cell_mask = np.asarray(cell_mask, dtype=bool)
    if cell_mask.shape != inst.shape:
        raise ValueError(f"cell_mask shape {cell_mask.shape} differs from {inst.shape}")
    contact = float(spacing.max()) if contact_distance_um is None else float(contact_distance_um)
    if contact < 0:
        raise ValueError(f"contact_distance_um must be ≥ 0, got {contact}")
    return inst, spacing, cell_mask, contact


def _object_surfaces(inst, ids, spacing, surface_um2, slices=None):
    """Per object: its surface voxels (µm), its area (µm²) and its centroid (µm).

    From bounding-box crops (``slices``: ``find_objects(inst)`` when known); the area is
    ``surface_um2``'s when given, else the Taubin-smoothed mesh's.
    """
    from ._measure import mask_centroid
    from ._mesh import _mesh_crop

    if slices is None:
        slices = ndimage.find_objects(inst)
    surf: dict[int, np.ndarray] = {}
    areas: dict[int, float] = {}
    centroids: dict[int, np.ndarray] = {}
    for oid in ids:
        sl = slices[oid - 1] if oid - 1 < len(slices) else None
        if sl is None:
            surf[oid] = np.zeros((0, 3))
            areas[oid] = 0.0
            centroids[oid] = np.full(3, np.nan)
            continue
        start = np.array([s.start for s in sl])
        m = inst[sl] == oid
        surf[oid] = (np.argwhere(surface_voxels(m)) + start) * spacing
        centroids[oid] = (mask_centroid(m) + start) * spacing
        if surface_um2 is not None and oid in surface_um2:
            areas[oid] = float(surface_um2[oid])
        else:
            areas[oid] = float(_mesh_crop(m, spacing, tuple(start)).area)
    return surf, areas, centroids


def _target_trees(ids, names, surf, target_names):
    """One k-d tree per target class over its objects' surface voxels:
    ``{class: (tree, points, owner ids) or None}``."""
    trees: dict[str, tuple[cKDTree, np.ndarray, np.ndarray] | None] = {}
    for c in target_names:
        members = [o for o, n in zip(ids, names, strict=True) if n == c and len(surf[o])]
        if not members:
            trees[c] = None
            continue
        pts = np.concatenate([surf[o] for o in members])
        owner = np.concatenate([np.full(len(surf[o]), o) for o in members])
        trees[c] = (cKDTree(pts), pts, owner)
    return trees


def _cell_shell(cell_mask, spacing, known=None):
    """A k-d tree over the voxels just outside the cell (µm) and the cell's centroid (µm)
    (``known``: the cell's box and centroid in voxels when the caller has them)."""
    from ._measure import _dilate, mask_box, mask_centroid

    if known is None:
        box = mask_box(cell_mask)
        centroid = mask_centroid(cell_mask) if box is not None else None
    else:
        box, centroid = known
    if box is None:
        return None, np.full(3, np.nan)
    # in the cell's box: outside it there is no cell and no shell
    padded = np.pad(cell_mask[box], 1)
    shell = _dilate(padded, full=False) & ~padded
    start = np.array([b.start for b in box])
    return cKDTree((np.argwhere(shell) - 1 + start) * spacing), np.asarray(centroid) * spacing


def _class_relation(p, oid, same_class, entry, area_um2, spacing, contact, reach):
    """Distance (µm) from one object's surface voxels ``p`` to the nearest object of a class,
    its contact area (µm²) and the number of that class's objects in contact."""
    dist, area, count = np.nan, 0.0, 0
    if entry is None or not len(p):
        return dist, area, count
    tree, pts, owner = entry
    if same_class:
        sel = owner != oid
        if not sel.any():
            return dist, area, count
        tree, pts, owner = cKDTree(pts[sel]), pts[sel], owner[sel]
    g, dist = _nearest_gaps(tree, pts, p, spacing, reach)
    in_contact = g <= contact + 1e-9
    area = area_um2 * float(in_contact.sum()) / len(p)
    if in_contact.any():
        pc = p[in_contact]
        # every (contact point, target point) pair that can be in contact, as index arrays
        # (no per-point lists): a pair's gap is its distance minus an extent of at most the
        # largest voxel size, so pairs farther than contact + that are never in contact;
        # voxels of distinct objects never coincide, so no pair is at 0
        within = (contact + 1e-9 + float(np.max(spacing))) * (1 + 1e-9)
        pairs = cKDTree(pc).sparse_distance_matrix(tree, within, output_type="ndarray")
        if len(pairs):
            src, flat = pairs["i"].astype(np.intp), pairs["j"].astype(np.intp)
            gl = _gap(pc[src], pts[flat], spacing)
            cand = set(np.unique(owner[flat[gl <= contact + 1e-9]]).tolist())
            cand.discard(oid)
            count = len(cand)
    return dist, area, count


def _radial(cell, cell_centroid, centroid, spacing) -> float:
    if not np.all(np.isfinite(cell_centroid)) or not np.all(np.isfinite(centroid)):
        return np.nan
    k = np.round(centroid / spacing).astype(int)
    if np.any(k < 0) or np.any(k >= cell.shape) or not cell[tuple(k)]:
        return np.nan
    v = centroid - cell_centroid
    r = float(np.linalg.norm(v))
    if r == 0:
        return 0.0
    exit_um = _ray_exit(cell, cell_centroid, v / r, spacing)
    return float(min(r / exit_um, 1.0)) if exit_um > 0 else np.nan
