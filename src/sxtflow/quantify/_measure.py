"""Per-object and per-cell measurements: morphometry and LAC ("molecular density").

Conventions
-----------
* Volumes are ``(z, y, x)``; the voxel size comes from the :class:`~sxtflow.io.Volume`
  (``spacing_um``). Centroids are in µm along (z, y, x), the centre of voxel ``[0, 0, 0]``
  at 0.
* Objects are connected components of each class with **26-connectivity** (voxels sharing a
  face, an edge or a corner belong together; :func:`scipy.ndimage.label` with a 3×3×3 block).
* ``volume_um3`` = voxel count × voxel volume (≤ 1 % error for radius ≥ 5 voxels, unbiased).
  ``surface_um2`` = area of the Taubin-smoothed marching-cubes mesh
  (:mod:`sxtflow.quantify`; ~+1 % on balls of radius ≥ 10 voxels). Below an equivalent-sphere
  radius of ``small_radius_vox`` voxels (default 5) the area, and so the sphericity, is not
  trustworthy: such rows have ``small_object = True``.
* ``in_cell``: the object lies in the cell (the largest component of all cell classes);
  pieces apart from it (debris, a neighbour cut by the field of view) are listed but not
  counted in the per-cell summary (:func:`cell_summary`), so fractions stay ≤ 1.
* The surface of an object is its whole boundary, including interfaces with objects it
  encloses (the cytoplasm's area includes the nuclear envelope and every organelle surface).
* ``sphericity`` ψ = π^(1/3) (6 V)^(2/3) / A with V from voxels and A from the mesh
  (1 for a ball, smaller otherwise).
* Shape from the inertia ellipsoid: the covariance of the voxel centres (in µm, plus the
  variance s²/12 of a uniform voxel along each axis) has eigenvalues λ1 ≥ λ2 ≥ λ3; the
  semi-axes of the ellipsoid with the same second moments are R_i = sqrt(5 λ_i).
  ``elongation`` = R2 / R1 and ``flatness`` = R3 / R2 (Zingg ratios; both in (0, 1], 1 =
  isotropic; a rod has low elongation, a disc low flatness). PyRadiomics' ``Elongation`` is
  the same R2/R1; its ``Flatness`` is R3/R1 = ``elongation * flatness`` here.
* LAC statistics over the object's voxels, in µm⁻¹: mean, median, population SD (ddof 0),
  10th and 90th percentiles.
* ``cell_surface_distance_um``: Euclidean distance (µm, anisotropic voxels respected) from
  the object's centroid to the nearest voxel outside the cell — the Euclidean distance
  transform of the cell mask, evaluated at the centroid (NaN for the cell row or a centroid
  outside the cell). It is computed with a k-d tree over the one-voxel shell around the cell
  (the nearest outside voxel always lies in that shell), so memory scales with the cell's
  surface rather than its volume; no mesh-proximity query is needed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io import Volume
from ..progress import progress
from ..segment import mask_box
from ._mesh import CONNECTIVITY_26, _class_boxes, _mesh_crop

#: Name of the row / class that stands for the whole cell (union of non-ice classes).
CELL_CLASS = "cell"

#: Columns of :func:`measure_objects`, in order.
OBJECT_COLUMNS = [
    "class",
    "object_id",
    "n_voxels",
    "volume_um3",
    "surface_um2",
    "sphericity",
    "elongation",
    "flatness",
    "centroid_z_um",
    "centroid_y_um",
    "centroid_x_um",
    "lac_mean_per_um",
    "lac_median_per_um",
    "lac_sd_per_um",
    "lac_p10_per_um",
    "lac_p90_per_um",
    "cell_surface_distance_um",
    "small_object",
    "in_cell",
]


def instances(
    labels: np.ndarray,
    classes: dict[str, int],
    *,
    spacing_um=None,
    separate: dict[str, float] | None = None,
    class_boxes: dict[int, tuple[slice, ...]] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Split semantic class labels into instances: connected components, or watershed.

    Parameters
    ----------
    labels : ndarray of int, shape (z, y, x)
        Semantic class labels.
    classes : dict of str to int
        Class name → label value; only these classes are split (pass the non-ice classes).
    spacing_um : tuple of 3 float, optional
        Voxel size (z, y, x) in µm; needed with ``separate``.
    separate : dict of str to float, optional
        Class name → smallest radius (µm) of its objects: these classes are split by
        :func:`sxtflow.refine.separate_instances` (distance-transform watershed), so touching
        round objects (lipid droplets, vacuoles) count as separate objects. Other classes,
        and all without ``separate``, are 26-connected components.
    class_boxes : dict of int to tuple of 3 slice, optional
        Label value → bounding box of that value in ``labels`` (every value present), as
        :func:`scipy.ndimage.find_objects` gives them, when the caller has them already;
        found here otherwise (one pass over the volume).

    Returns
    -------
    instance_labels : ndarray of uint16 (int32 beyond 65 535 instances), shape (z, y, x)
        0 = background, 1…N = instances, numbered class by class in the order of
        ``classes`` and within a class in raster order. Components are 26-connected.
        (uint16: half the memory of int32, 256 MiB for a 512³ volume.)
    table : pandas.DataFrame
        One row per instance: ``object_id`` (int), ``class`` (str), ``class_value`` (int).

    Examples
    --------
    >>> lab = np.zeros((1, 1, 7), np.uint8); lab[0, 0, [0, 1, 4]] = 2; lab[0, 0, 6] = 4
    >>> inst, table = instances(lab, {"cytoplasm": 2, "nucleus": 4})
    >>> inst.ravel().tolist(), table["class"].tolist()
    ([1, 1, 0, 0, 2, 0, 3], ['cytoplasm', 'cytoplasm', 'nucleus'])
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be 3D (z, y, x), got shape {labels.shape}")
    separate = dict(separate or {})
    unknown = sorted(set(separate) - set(classes))
    if unknown:
        raise ValueError(f"separate names unknown class(es) {unknown}; known: {sorted(classes)}")
    if separate and spacing_um is None:
        raise ValueError("separate needs spacing_um (the watershed works in µm)")
    out = np.zeros(labels.shape, dtype=np.uint16)
    rows = []
    offset = 0
    boxes = _class_boxes(labels) if class_boxes is None else class_boxes
    for name, value in classes.items():
        box = boxes.get(int(value))
        if box is None:
            continue
        # every class in its own bounding box (grown by one voxel: the watershed's distance
        # transform sees background beyond the class's edge, as in the whole volume)
        box = tuple(
            slice(max(s.start - 1, 0), min(s.stop + 1, n))
            for s, n in zip(box, labels.shape, strict=True)
        )
        if name in separate:
            from ..segment import separate_instances

            comps = separate_instances(
                labels[box] == value, spacing_um, min_radius_um=float(separate[name])
            )
            n = int(comps.max())
        else:
            comps, n = ndimage.label(
                labels[box] == value, structure=CONNECTIVITY_26, output=np.int32
            )
        if n == 0:
            continue
        if offset + n > np.iinfo(out.dtype).max:
            out = out.astype(np.int32)
        sel = comps > 0
        comps += offset  # in place, and no fancy-indexed copies (peak memory)
        np.copyto(out[box], comps, where=sel, casting="unsafe")  # values checked above
        del comps, sel
        rows.extend(
            {"object_id": offset + i, "class": name, "class_value": int(value)}
            for i in range(1, n + 1)
        )
        offset += n
    table = pd.DataFrame(rows, columns=["object_id", "class", "class_value"])
    return out, table


def _moments(mask: np.ndarray, start, spacing: np.ndarray):
    """Voxel count, centroid (µm) and coordinate covariance (µm²) of a mask.

    The same numbers as from ``np.argwhere(mask)`` (float64 sums about the box centre,
    which are exact: every term is a multiple of ¼ far below 2⁵³), from the mask's three
    2D projections (counts along one axis each) in exact integer arithmetic: three passes
    over the mask instead of every voxel's coordinates (a whole cell at 25 nm has tens of
    millions).
    """
    m = np.asarray(mask, dtype=bool)
    u = m.view(np.uint8)
    pzy = u.sum(axis=2, dtype=np.int64)  # (z, y): counts along x
    pzx = u.sum(axis=1, dtype=np.int64)  # (z, x)
    pyx = u.sum(axis=0, dtype=np.int64)  # (y, x)
    n = int(pzy.sum())
    # doubled coordinates about the box centre, K = 2 k - shape: integers (the centre may
    # fall between voxels); first and second moments of K exactly, in int64
    kz, ky, kx = (2 * np.arange(s, dtype=np.int64) - s for s in m.shape)
    pz, py, px = pzy.sum(axis=1), pzy.sum(axis=0), pzx.sum(axis=0)
    s1k = np.array([kz @ pz, ky @ py, kx @ px], dtype=np.int64)
    s2k = np.empty((3, 3), dtype=np.int64)
    s2k[0, 0], s2k[1, 1], s2k[2, 2] = (kz * kz) @ pz, (ky * ky) @ py, (kx * kx) @ px
    s2k[0, 1] = s2k[1, 0] = kz @ pzy @ ky
    s2k[0, 2] = s2k[2, 0] = kz @ pzx @ kx
    s2k[1, 2] = s2k[2, 1] = ky @ pyx @ kx
    s1 = s1k.astype(np.float64) / 2.0  # exact: integers below 2^53, halved
    s2 = s2k.astype(np.float64) / 4.0
    ref = np.asarray(m.shape, dtype=float) / 2.0
    mean = s1 / max(n, 1)
    cov = (s2 / max(n, 1) - np.outer(mean, mean)) * np.outer(spacing, spacing)
    centroid = (mean + ref + np.asarray(start)) * spacing
    return n, centroid, cov


def mask_centroid(mask: np.ndarray) -> np.ndarray:
    """Centroid (voxel coordinates, float64) of the True voxels of a 3D mask; NaN when empty.

    ``scipy.ndimage.center_of_mass(mask)`` without its float64 copies of the whole volume
    (one per axis: 3 GB at 512³): the mask's bounding box, summed slab by slab.

    Examples
    --------
    >>> m = np.zeros((10, 10, 10), bool); m[2:4, 5, 6:9] = True
    >>> mask_centroid(m).tolist()
    [2.5, 5.0, 7.0]
    """
    box = mask_box(mask)
    if box is None:
        return np.full(3, np.nan)
    return _moments(np.asarray(mask)[box], [b.start for b in box], np.ones(3))[1]


def _box_within(mask: np.ndarray, box: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    """``mask_box(mask)`` for a mask known to be False outside ``box`` (None: the whole
    volume): only the box is read. Absolute slices; None when empty."""
    if box is None:
        return mask_box(mask)
    inner = mask_box(np.asarray(mask)[box])
    return None if inner is None else _within(box, inner)


def _within(box: tuple[slice, ...], inner: tuple[slice, ...]) -> tuple[slice, ...]:
    """``inner`` (slices relative to ``box``'s start) as absolute slices of the volume."""
    return tuple(
        slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner, strict=True)
    )


def _centroid_within(mask: np.ndarray, box: tuple[slice, ...] | None) -> np.ndarray:
    """``mask_centroid(mask)`` (the same arithmetic) for a mask False outside ``box``."""
    tight = _box_within(mask, box)
    if tight is None:
        return np.full(3, np.nan)
    return _moments(np.asarray(mask)[tight], [b.start for b in tight], np.ones(3))[1]


def _merge_boxes(boxes: Iterable[tuple[slice, ...] | None]) -> tuple[slice, ...] | None:
    """The bounding box of several boxes (None entries skipped; None when all are)."""
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return tuple(
        slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
        for a in range(len(boxes[0]))
    )


def _elongation_flatness(cov: np.ndarray, n: int, spacing: np.ndarray) -> tuple[float, float]:
    """Zingg ratios of the inertia ellipsoid from the coordinate covariance (µm²)."""
    if n < 2:
        return np.nan, np.nan
    cov = cov + np.diag(spacing**2 / 12.0)
    lam = np.sort(np.clip(np.linalg.eigvalsh(cov), 0.0, None))[::-1]
    r1, r2, r3 = np.sqrt(5.0 * lam)
    return float(r2 / r1), float(r3 / r2) if r2 > 0 else np.nan


def _lac_stats(values: np.ndarray) -> dict:
    """LAC columns of a row from the object's LAC values (µm⁻¹)."""
    values = np.array(values, dtype=np.float64)  # our own copy: partitioned in place below
    mean, sd = float(values.mean()), float(values.std())  # before the partition reorders it
    p10, median, p90 = np.percentile(values, [10, 50, 90], overwrite_input=True)
    return {
        "lac_mean_per_um": mean,
        "lac_median_per_um": float(median),
        "lac_sd_per_um": sd,
        "lac_p10_per_um": float(p10),
        "lac_p90_per_um": float(p90),
    }


def _row(
    name: str,
    oid: int,
    mask: np.ndarray,
    start: tuple[int, ...],
    lac: dict,
    spacing: np.ndarray,
    smooth_iterations: int,
    small_n: float,
    depth_of,
    area: float | None = None,
) -> dict:
    n = int(mask.sum())
    voxel_volume = float(np.prod(spacing))
    volume = n * voxel_volume
    if area is None:  # else the caller's area of the same mesh
        area = _mesh_area(mask, spacing, start, smooth_iterations)
    sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area if area > 0 else np.nan
    _, centroid, cov = _moments(mask, start, spacing)
    elongation, flatness = _elongation_flatness(cov, n, spacing)
    depth = np.nan if depth_of is None else depth_of(centroid)
    return {
        "class": name,
        "object_id": int(oid),
        "n_voxels": n,
        "volume_um3": volume,
        "surface_um2": area,
        "sphericity": float(sphericity),
        "elongation": elongation,
        "flatness": flatness,
        "centroid_z_um": float(centroid[0]),
        "centroid_y_um": float(centroid[1]),
        "centroid_x_um": float(centroid[2]),
        **lac,
        "cell_surface_distance_um": depth,
        "small_object": bool(n < small_n),
    }


def _mesh_area(mask: np.ndarray, spacing: np.ndarray, start, smooth_iterations: int) -> float:
    """Area (µm²) of the Taubin-smoothed marching-cubes mesh of a cropped mask."""
    mesh = _mesh_crop(mask, spacing, start, smooth_iterations)
    area = float(mesh.area)
    big = len(mesh.faces) > 100_000
    del mesh
    if big:  # a Trimesh is in reference cycles: free a whole cell's mesh now (peak memory)
        gc.collect()
    return area


def _dilate(mask: np.ndarray, full: bool = True) -> np.ndarray:
    """Binary dilation of a 3D mask by one voxel, outside the array counting as False.

    ``full``: the 3×3×3 cube (26-connectivity; separable, one axis after the other), else
    the 6 face neighbours. Equal to :func:`scipy.ndimage.binary_dilation` with those
    structures, by shifted ORs instead of a pass per structuring element voxel.
    """
    out = np.array(mask, dtype=bool)
    src = out.copy() if not full else out
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        if full:
            src = out.copy()
        out[tuple(hi)] |= src[tuple(lo)]
        out[tuple(lo)] |= src[tuple(hi)]
    return out


def _erode6(mask: np.ndarray) -> np.ndarray:
    """Binary erosion of a 3D mask by its 6 face neighbours, outside the array counting as
    False (:func:`scipy.ndimage.binary_erosion` of the mask padded by one voxel, cropped)."""
    out = np.array(mask, dtype=bool)
    src = out.copy()
    for axis in range(3):
        first = [slice(None)] * 3
        last = [slice(None)] * 3
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        first[axis], last[axis] = 0, -1
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(hi)] &= src[tuple(lo)]
        out[tuple(lo)] &= src[tuple(hi)]
        out[tuple(first)] = False
        out[tuple(last)] = False
    return out


def _surface_distance(cmask: np.ndarray, start, spacing: np.ndarray):
    """Function: point (z, y, x) µm → distance (µm) to the nearest voxel outside the cell."""
    from scipy.spatial import cKDTree

    padded = np.pad(cmask, 1)
    shell = _dilate(padded, full=True) & ~padded
    tree = cKDTree((np.argwhere(shell) - 1 + np.asarray(start)) * spacing)
    start = np.asarray(start)

    def depth_of(point_um: np.ndarray) -> float:
        k = np.round(np.asarray(point_um) / spacing).astype(int) - start
        if np.any(k < 0) or np.any(k >= cmask.shape) or not cmask[tuple(k)]:
            return np.nan
        return float(tree.query(point_um)[0])

    return depth_of


def _union(labels: np.ndarray, values: list[int]) -> np.ndarray:
    """``np.isin(labels, values)``; for uint8 labels a 256-entry lookup table (one pass)."""
    if labels.dtype == np.uint8:
        lut = np.zeros(256, dtype=bool)
        lut[[v for v in values if 0 <= v <= 255]] = True
        return lut[labels]
    return np.isin(labels, values)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``scipy.ndimage.binary_fill_holes(mask)`` (6-connected background), in one labelling.

    The background components (6-connectivity, as scipy's default structure) that touch
    the array border are the outside; every other background voxel is an enclosed hole
    and is filled. scipy grows the outside from the border by repeated dilation, one voxel
    layer per pass: seconds on a whole cell at 25 nm; the result is the same.

    Examples
    --------
    >>> m = np.ones((3, 3, 3), bool); m[1, 1, 1] = False
    >>> bool(fill_holes(m)[1, 1, 1])
    True
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0:
        return mask.copy()
    bg, n = ndimage.label(~mask, output=np.int32)  # default structure: 6-connectivity
    if n == 0:
        return mask.copy()
    outside = np.zeros(n + 1, dtype=bool)
    for axis in range(mask.ndim):
        for end in (0, -1):
            outside[np.unique(np.take(bg, end, axis=axis))] = True
    outside[0] = True  # label 0 is the mask itself
    out = outside[bg]
    del bg
    np.logical_not(out, out=out)
    out |= mask
    return out


def _cell_mask(labels: np.ndarray, values: list[int], box=None) -> np.ndarray:
    """Largest 26-connected component of the union of ``values``, enclosed holes filled
    (``box``: a box that holds every voxel of ``values``; only it is read)."""
    out = np.zeros(labels.shape, dtype=bool)
    if box is None:
        box = tuple(slice(0, n) for n in labels.shape)
    union = _union(labels[box], values)
    inner = mask_box(union)  # the union's bounding box: the work is there
    if inner is None:
        return out
    union = union[inner]
    box = _within(box, inner)
    comps, n = ndimage.label(union, structure=CONNECTIVITY_26, output=np.int32)
    if n == 1:  # one piece (the usual cell): it is the largest, no count needed
        largest = union
    else:
        del union
        sizes = np.bincount(comps.ravel())
        sizes[0] = 0
        largest = comps == int(np.argmax(sizes))
    del comps
    out[box] = fill_holes(largest)
    return out


def cell_mask(labels: np.ndarray, values: Iterable[int], *, box=None) -> np.ndarray:
    """The cell: largest 26-connected component of the union of ``values``, holes filled.

    Parameters
    ----------
    labels : ndarray of int, shape (z, y, x)
        Class labels.
    values : iterable of int
        Label values of the cell's classes (every class but ice).
    box : tuple of 3 slice, optional
        A box (voxel index slices) that holds every voxel of ``values``, e.g. the union of
        their class boxes: only it is read (the same mask as without it).

    Returns
    -------
    ndarray of bool, shape (z, y, x)
    """
    return _cell_mask(np.asarray(labels), [int(v) for v in values], box)


def measure_objects(
    labels: Volume,
    lac: Volume,
    classes: dict[str, int],
    *,
    min_volume_um3: float = 0.0,
    smooth_iterations: int = 20,
    small_radius_vox: float = 5.0,
    ice: str = "ice",
    relations: bool = False,
    relation_targets: Iterable[str] | None = None,
    contact_distance_um: float | None = None,
    separate: dict[str, float] | None = None,
    cell: np.ndarray | None = None,
    instance_split: tuple[np.ndarray, pd.DataFrame] | None = None,
    cell_surface_um2: float | None = None,
    box: tuple[slice, ...] | None = None,
) -> pd.DataFrame:
    """Measure every object of every non-ice class, and the whole cell.

    Parameters
    ----------
    labels : Volume
        Semantic class labels, data shape (z, y, x).
    lac : Volume
        Linear absorption coefficient in µm⁻¹, same shape and voxel size as ``labels``.
    classes : dict of str to int
        Class name → label value. The class named ``ice`` is not measured; every other class is
        split into 26-connected objects.
    min_volume_um3 : float, optional
        Objects smaller than this (µm³) are dropped (debris filter; not applied to the cell).
    smooth_iterations : int, optional
        Taubin smoothing iterations for the surface meshes.
    small_radius_vox : float, optional
        Objects with fewer voxels than a ball of this radius (in voxels) are flagged
        ``small_object``.
    ice : str, optional
        Name of the embedding-medium class.
    relations : bool, optional
        Append the columns of :func:`sxtflow.quantify.object_relations` (distances to the
        membrane and to the nearest object of each target class, contacts, radial position;
        NaN on the cell row), computed on the same instances and cell mask, with the mesh
        areas of this table.
    relation_targets : iterable of str, optional
        Target classes of the relations; default every measured class but ``cytoplasm``
        (which touches everything).
    contact_distance_um : float, optional
        Contact threshold (µm) of the relations; default one voxel.
    separate : dict of str to float, optional
        Class name → smallest object radius (µm): objects of these classes are separated by
        watershed (see :func:`instances`); e.g. ``{"lipid_droplet": 0.1}``.
    cell : ndarray of bool, shape (z, y, x), optional
        The cell mask of these labels (:func:`cell_mask` of the non-ice classes) when the
        caller has it already; computed here otherwise. The LAC volume is needed only
        until every object's LAC columns are computed: a caller that passes its only
        reference (e.g. ``measure_objects(labels, volumes.pop(), ...)``) has it freed
        before the meshes and the relations.
    instance_split : (ndarray, pandas.DataFrame), optional
        :func:`instances` of these labels with the non-ice classes and ``separate`` when the
        caller has it already (e.g. computed before reading the LAC volume: peak memory);
        computed here otherwise.
    cell_surface_um2 : float, optional
        The area (µm²) of the cell mask's mesh with ``smooth_iterations`` when the caller
        has it already (e.g. for :func:`sxtflow.quantify.surface_summary`); meshed here
        otherwise.
    box : tuple of 3 slice, optional
        A box (voxel index slices) that holds every voxel of the non-ice classes (e.g. the
        union of their class boxes): the whole-volume searches (the objects' and the cell's
        boxes) read only it. The same table as without it.

    Returns
    -------
    pandas.DataFrame
        One row per object, columns :data:`OBJECT_COLUMNS` (units in the names; see the module
        docstring for definitions). ``object_id`` is the id in the instance image of
        :func:`instances` called with the non-ice classes. One extra row with ``class`` =
        ``"cell"`` and ``object_id`` 0 describes the cell: the largest 26-connected
        component of the union of all non-ice classes, enclosed holes filled. Work per object
        is confined to its bounding box.
    """
    if labels.data.shape != lac.data.shape:
        raise ValueError(f"labels shape {labels.data.shape} and LAC shape {lac.data.shape} differ")
    if not np.allclose(labels.voxel_nm, lac.voxel_nm, rtol=1e-4):
        raise ValueError(
            f"labels voxel {labels.voxel_nm} nm and LAC voxel {lac.voxel_nm} nm differ"
        )
    spacing = np.asarray(labels.spacing_um, dtype=float)
    lab = np.asarray(labels.data)
    lacd = np.asarray(lac.data)
    organelles = {k: int(v) for k, v in classes.items() if k != ice}
    small_n = 4.0 / 3.0 * np.pi * small_radius_vox**3
    voxel_volume = float(np.prod(spacing))

    # the LAC columns of every object first, so the LAC volume can go before the meshes
    # (a caller that hands over its only reference frees it there: peak memory)
    if cell is None:
        cell = _cell_mask(lab, list(organelles.values()))
    cell = np.asarray(cell, dtype=bool)
    if cell.shape != lab.shape:
        raise ValueError(f"cell mask shape {cell.shape} differs from the labels' {lab.shape}")
    csl = _box_within(cell, box)
    cell_lac = _lac_stats(lacd[csl][cell[csl]]) if csl is not None else None
    if instance_split is None:
        instance_split = instances(lab, organelles, spacing_um=tuple(spacing), separate=separate)
    inst, table = instance_split
    del instance_split
    if inst.shape != lab.shape:
        raise ValueError(f"instance labels shape {inst.shape} differs from the labels' {lab.shape}")
    slices = _find_objects_within(inst, box)
    lac_rows = {}
    pairs = list(zip(table["object_id"], table["class"], strict=True))
    for oid, name in progress(pairs, len(pairs), "object LAC"):
        oid = int(oid)
        sl = slices[oid - 1]
        mask = inst[sl] == oid
        if mask.sum() * voxel_volume < min_volume_um3:
            continue
        lac_rows[oid] = (name, _lac_stats(lacd[sl][mask]))
    del lac, lacd

    rows = []
    depth_of = None
    cell_centroid = np.full(3, np.nan)
    if csl is not None:
        cstart = tuple(s.start for s in csl)
        cmask = cell[csl]
        # the volume border counts as the cell's surface (the shell extends beyond it)
        depth_of = _surface_distance(cmask, cstart, spacing)
        cell_row = _row(
            CELL_CLASS,
            0,
            cmask,
            cstart,
            cell_lac,
            spacing,
            smooth_iterations,
            small_n,
            None,
            area=cell_surface_um2,
        )
        rows.append(cell_row)
        # the cell's centroid in voxels, as mask_centroid gives it (for the relations)
        cell_centroid = _moments(cmask, cstart, np.ones(3))[1]
        del cmask

    for oid, (name, lac_row) in progress(
        list(lac_rows.items()), len(lac_rows), "measuring objects"
    ):
        sl = slices[oid - 1]
        mask = inst[sl] == oid
        start = tuple(s.start for s in sl)
        row = _row(name, oid, mask, start, lac_row, spacing, smooth_iterations, small_n, depth_of)
        # an object of a cell class lies wholly inside one component of their union: in the
        # cell or in a piece apart from it (debris, a neighbour cut by the field of view)
        row["in_cell"] = bool(cell[sl][mask].any())
        rows.append(row)
    if rows and rows[0]["class"] == CELL_CLASS:
        rows[0]["in_cell"] = True
    out = pd.DataFrame(rows, columns=OBJECT_COLUMNS)
    out = out.astype({"object_id": int, "n_voxels": int, "small_object": bool, "in_cell": bool})
    if relations:
        from ._relations import object_relations

        if relation_targets is None:
            relation_targets = [k for k in organelles if k != "cytoplasm"]
        kept = table[table["object_id"].isin(out["object_id"])]
        areas = dict(zip(out["object_id"], out["surface_um2"], strict=True))
        rel = object_relations(
            inst,
            kept,
            spacing,
            cell,
            targets=list(relation_targets),
            contact_distance_um=contact_distance_um,
            surface_um2=areas,
            object_slices=slices,
            cell_box=(csl, cell_centroid),
        )
        out = out.merge(rel.drop(columns="class"), on="object_id", how="left")
    return out


def _find_objects_within(inst: np.ndarray, box: tuple[slice, ...] | None) -> list:
    """``scipy.ndimage.find_objects(inst)`` for instances that lie in ``box`` (None: the
    whole volume), reading only the box."""
    if box is None:
        return ndimage.find_objects(inst)
    return [None if sl is None else _within(box, sl) for sl in ndimage.find_objects(inst[box])]


def cell_summary(objects: pd.DataFrame, classes: Iterable[str] | None = None) -> pd.DataFrame:
    """Summarise an object table (:func:`measure_objects`) into one row per cell.

    Parameters
    ----------
    objects : pandas.DataFrame
        Output of :func:`measure_objects` (one cell row, class ``"cell"``).
    classes : iterable of str, optional
        Organelle classes to report even when they have no object (count 0, volume 0,
        LAC NaN). Default: the classes present in ``objects``.

    Returns
    -------
    pandas.DataFrame
        One row: ``cell_volume_um3``, ``cell_surface_um2``, ``cell_sphericity``,
        ``cell_lac_mean_per_um``, and for each class ``<class>_count``,
        ``<class>_volume_um3``, ``<class>_fraction`` (class volume / cell volume) and
        ``<class>_lac_mean_per_um`` (volume-weighted mean of the objects' means = mean over
        all the class's voxels). Cell values are NaN without a cell row. With an ``in_cell``
        column, only the objects in the cell count, so no fraction exceeds 1 when the
        segmentation holds pieces apart from the cell.
    """
    if "in_cell" in objects.columns:
        objects = objects[objects["in_cell"].astype(bool)]
    cell = objects[objects["class"] == CELL_CLASS]
    row: dict[str, float] = {}
    if len(cell):
        c = cell.iloc[0]
        row["cell_volume_um3"] = float(c["volume_um3"])
        row["cell_surface_um2"] = float(c["surface_um2"])
        row["cell_sphericity"] = float(c["sphericity"])
        row["cell_lac_mean_per_um"] = float(c["lac_mean_per_um"])
    else:
        for k in (
            "cell_volume_um3",
            "cell_surface_um2",
            "cell_sphericity",
            "cell_lac_mean_per_um",
        ):
            row[k] = np.nan
    rest = objects[objects["class"] != CELL_CLASS]
    names = list(dict.fromkeys(rest["class"])) if classes is None else list(classes)
    names = [n for n in names if n != CELL_CLASS]
    cell_volume = row["cell_volume_um3"]
    for name in names:
        sub = rest[rest["class"] == name]
        vol = float(sub["volume_um3"].sum())
        row[f"{name}_count"] = len(sub)
        row[f"{name}_volume_um3"] = vol
        row[f"{name}_fraction"] = vol / cell_volume if cell_volume and cell_volume > 0 else np.nan
        row[f"{name}_lac_mean_per_um"] = (
            float(np.average(sub["lac_mean_per_um"], weights=sub["n_voxels"]))
            if len(sub)
            else np.nan
        )
    return pd.DataFrame([row])
