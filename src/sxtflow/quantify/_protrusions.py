"""Cell-surface protrusions: detection, typing (filopodium, lamellipodium, bleb) and size.

Method
------
1. **Body**: the morphological opening of the cell mask with a ball of radius
   ``body_radius_um`` (default 0.5 µm), computed with two Euclidean distance transforms on
   the cell's bounding box (erosion = depth > R, dilation = distance to the eroded set ≤ R),
   so anisotropic voxels are handled exactly. Everything thinner than 2R is removed.
2. **Pieces**: ``cell & ~body``, split into 26-connected components. A piece's **base** is
   its voxels 26-adjacent to the body. Pieces lower than ``min_length_um`` (roughness of the
   membrane that the opening shaves off) or smaller than ``min_volume_um3`` are dropped.
3. **Per protrusion** (µm, µm², µm³):

   * ``length_um``: the longest geodesic path (26-neighbour steps of Euclidean length, inside
     the piece) from the base to any voxel, plus one voxel (half a voxel at the base, half at
     the tip), so it runs from the body surface to the tip along the protrusion;
   * ``thickness_um``: 2 × the largest Euclidean distance from a piece voxel to the nearest
     voxel outside the piece (body included), i.e. the diameter of the largest inscribed
     ball ("local thickness");
   * ``mean_width_um`` = volume / (length × thickness): ≈ π/4 × thickness for a tube, the
     sheet's mean width for a sheet;
   * ``volume_um3`` (voxel count), ``base_area_um2`` (4π √(λ1 λ2) of the base voxels'
     covariance: the area of the ellipse with the same second moments), the centroid (µm)
     and ``direction`` (unit vector from the cell centroid to the piece's centroid).

4. **Type**: ``bleb`` if ``length_um < rod_ratio × thickness_um`` (short and round, default
   2); otherwise ``lamellipodium`` if ``mean_width_um ≥ sheet_ratio × thickness_um`` (a
   flat sheet, default 2.5); otherwise ``filopodium`` (thin and long). A bleb's length is its
   height above the opened body, which bulges a little into the bleb's neck.

Per cell (:func:`surface_summary`): counts per type, protrusion volume fraction (protrusion
volume / cell volume), ``surface_roughness`` = cell surface area / body surface area − 1 (the
area that protrusions and ruffles add; 0 for a smooth convex cell), and
``body_roughness`` = body area / area of the inertia-equivalent ellipsoid − 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..io import as_spacing_um as _spacing3
from ..segment._distance import distance_um

_C26 = np.ones((3, 3, 3), dtype=bool)

#: Taubin smoothing iterations of the cell's and the body's meshes in
#: :func:`surface_summary` (a caller holding the cell mesh's area at this smoothing passes
#: it as ``cell_surface_um2``).
SURFACE_SMOOTH_ITERATIONS = 20

#: Columns of :func:`protrusions`, in order.
PROTRUSION_COLUMNS = [
    "protrusion_id",
    "type",
    "length_um",
    "thickness_um",
    "mean_width_um",
    "volume_um3",
    "base_area_um2",
    "centroid_z_um",
    "centroid_y_um",
    "centroid_x_um",
    "direction_z",
    "direction_y",
    "direction_x",
]


def cell_body(
    cell_mask: np.ndarray, spacing_um, body_radius_um: float = 0.5, *, cell_box=None
) -> np.ndarray:
    """Morphological opening of the cell with a ball of ``body_radius_um`` µm.

    Parameters
    ----------
    cell_mask : ndarray of bool, shape (z, y, x)
    spacing_um : float or sequence of 3 floats
        Voxel size (z, y, x) µm.
    body_radius_um : float
        Radius of the opening ball (µm).
    cell_box : tuple of 3 slice, optional
        The cell mask's bounding box (:func:`sxtflow.segment.mask_box`) when the caller has
        it already: only it is read (the same result as without it).

    Returns
    -------
    ndarray of bool, shape (z, y, x)
        The body: the union of all balls of that radius that fit in the cell.

    Examples
    --------
    >>> m = np.zeros((21, 21, 30), bool); m[2:19, 2:19, 2:19] = True; m[10, 10, 19:28] = True
    >>> body = cell_body(m, 1.0, 3.0)
    >>> bool(body[10, 10, 21:].any()), bool(body[10, 10, 10])  # the spike is shaved off
    (False, True)
    """
    cell = np.asarray(cell_mask, dtype=bool)
    if cell.ndim != 3:
        raise ValueError(f"cell_mask must be 3D (z, y, x), got shape {cell.shape}")
    spacing = _spacing3(spacing_um)
    r = float(body_radius_um)
    if r <= 0:
        raise ValueError(f"body_radius_um must be positive, got {body_radius_um}")
    out = np.zeros(cell.shape, dtype=bool)  # untouched pages are not resident
    from ._measure import mask_box

    sl = mask_box(cell) if cell_box is None else cell_box  # no uint8 copy of the volume
    if sl is None:
        return out
    # the cell's box with one layer of background around it (the volume border is outside
    # the cell): a cell voxel's nearest background voxel lies in it (a voxel beyond the
    # layer is farther than its projection onto the layer), and so does every eroded voxel,
    # so a margin of the ball's radius would change nothing (the body is cut to the cell)
    big = tuple(sl)
    c = np.pad(cell[big], 1)
    # closed ball: a voxel at exactly r from the background is not eroded, one at exactly
    # r from the eroded set is in the dilation (float32 distances: a relative tolerance)
    r_tie = r * (1.0 + 1e-5)
    eroded = distance_um(c, spacing) > r_tie
    if not eroded.any():
        return out
    eroded = ~eroded  # the dilation: distance of every other voxel to the eroded set
    dilated = distance_um(eroded, spacing) <= r_tie
    del eroded
    dilated &= c
    out[big] = dilated[1:-1, 1:-1, 1:-1]
    return out


def _path_length(path_um: np.ndarray, window: int = 5) -> float:
    """Length (µm) of a voxel path (n, 3) after a moving average that removes lattice zig-zag."""
    if len(path_um) < 2:
        return 0.0
    if len(path_um) > window:
        smooth = ndimage.uniform_filter1d(path_um, window, axis=0, mode="nearest")
        smooth[0], smooth[-1] = path_um[0], path_um[-1]
    else:
        smooth = path_um
    return float(np.linalg.norm(np.diff(smooth, axis=0), axis=1).sum())


def _length_bound(n: int, spacing: np.ndarray) -> float:
    """An upper bound (µm) of the ``length_um`` of a piece of ``n`` voxels.

    Its geodesic path visits at most ``n`` voxels, so it has at most ``n - 1`` steps of at
    most one voxel diagonal each: raw length L ≤ (n − 1) · diagonal. A path of more than
    5 voxels is smoothed by a moving average of 5 (:func:`_path_length`) with its ends
    kept, which adds at most 3/5 of a step length per step at the ends, so the smoothed
    length is ≤ 2 L; shorter paths are not smoothed. Plus the one voxel (mean spacing)
    of ``length_um``; with a relative margin for rounding.
    """
    raw = max(n - 1, 0) * float(np.sqrt((spacing**2).sum()))
    return ((2.0 if n > 5 else 1.0) * raw + float(np.mean(spacing))) * (1 + 1e-9)


def _piece_row(k, piece, body_crop, start, spacing, cell_centroid, min_length_um=0.0):
    """The row of one piece of cell minus body; None without a base (no voxel touching
    the body) or when the piece cannot reach ``min_length_um`` (µm).

    The geodesic path runs from one base voxel (every base voxel is a start at cost 0, so
    the traceback ends at the first it reaches) through non-base voxels only: it has at
    most ``n - n_base + 1`` voxels, and :func:`_length_bound` of that bounds its length.
    """
    from skimage.graph import MCP_Geometric

    vox = float(np.prod(spacing))
    n = int(piece.sum())
    volume = n * vox
    base = piece & ndimage.binary_dilation(body_crop, structure=_C26)
    n_base = int(base.sum())
    if not n_base or _length_bound(n - n_base + 1, spacing) < min_length_um:
        return None
    costs = np.where(piece, 1.0, np.inf)
    mcp = MCP_Geometric(costs, sampling=tuple(spacing), fully_connected=True)
    cum, _ = mcp.find_costs([tuple(p) for p in np.argwhere(base)])
    geo = np.where(piece & np.isfinite(cum), cum, -1.0)
    tip = np.unravel_index(int(np.argmax(geo)), geo.shape)
    length = _path_length(np.asarray(mcp.traceback(tip), dtype=float) * spacing)
    length += float(np.mean(spacing))
    inner = ndimage.distance_transform_edt(np.pad(piece, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    thickness = 2.0 * float(inner.max())
    idx = np.argwhere(piece)
    centroid = (idx.mean(axis=0) + start) * spacing
    bpts = np.argwhere(base) * spacing
    cov = np.cov(bpts.T, bias=True) if len(bpts) > 1 else np.zeros((3, 3))
    cov = cov + np.diag(spacing**2 / 12.0)
    lam = np.sort(np.clip(np.linalg.eigvalsh(cov), 0, None))[::-1]
    base_area = float(4 * np.pi * np.sqrt(lam[0] * lam[1]))
    v = centroid - cell_centroid
    norm = np.linalg.norm(v)
    direction = v / norm if norm > 0 else np.full(3, np.nan)
    return {
        "protrusion_id": k,
        "length_um": length,
        "thickness_um": thickness,
        "mean_width_um": volume / (length * thickness) if thickness > 0 else np.nan,
        "volume_um3": volume,
        "base_area_um2": base_area,
        "centroid_z_um": float(centroid[0]),
        "centroid_y_um": float(centroid[1]),
        "centroid_x_um": float(centroid[2]),
        "direction_z": float(direction[0]),
        "direction_y": float(direction[1]),
        "direction_x": float(direction[2]),
    }


def protrusions(
    cell_mask: np.ndarray,
    spacing_um,
    *,
    body_radius_um: float = 0.5,
    min_length_um: float = 0.3,
    min_volume_um3: float = 0.0,
    sheet_ratio: float = 2.5,
    rod_ratio: float = 2.0,
    body: np.ndarray | None = None,
    cell_box: tuple[slice, ...] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Detect, measure and type the protrusions of one cell.

    Parameters
    ----------
    cell_mask : ndarray of bool, shape (z, y, x)
        The cell (one connected object; e.g. every non-ice class, holes filled).
    spacing_um : float or sequence of 3 floats
        Voxel size (z, y, x) µm.
    body_radius_um : float
        Radius (µm) of the opening ball that separates the body from protrusions.
    min_length_um, min_volume_um3 : float
        Pieces shorter / smaller than this are membrane roughness, not protrusions.
    sheet_ratio, rod_ratio : float
        Typing thresholds (module docstring).
    body : ndarray of bool, optional
        A precomputed :func:`cell_body`.
    cell_box : tuple of 3 slice, optional
        The cell mask's bounding box (:func:`sxtflow.segment.mask_box`) when the caller has
        it already: only it is read (the same result as without it).

    Returns
    -------
    table : pandas.DataFrame
        One row per protrusion, columns :data:`PROTRUSION_COLUMNS` (module docstring).
    protrusion_labels : ndarray of int32, shape (z, y, x)
        0 = body or outside, ``protrusion_id`` on each kept protrusion.
    """
    cell = np.asarray(cell_mask, dtype=bool)
    spacing = _spacing3(spacing_um)
    if body is None:
        body = cell_body(cell, spacing, body_radius_um, cell_box=cell_box)
    from ._measure import _centroid_within, mask_box

    out = np.zeros(cell.shape, dtype=np.int32)  # untouched pages are not resident
    box = mask_box(cell) if cell_box is None else cell_box
    if box is None:
        return pd.DataFrame(columns=PROTRUSION_COLUMNS), out
    # in the cell's box grown by one voxel (each piece's crop below reaches one voxel past
    # it; outside the box there is no cell): the labels are int32
    box = tuple(
        slice(max(b.start - 1, 0), min(b.stop + 1, dim))
        for b, dim in zip(box, cell.shape, strict=True)
    )
    origin = [b.start for b in box]
    pieces, n = ndimage.label(cell[box] & ~body[box], structure=_C26, output=np.int32)
    rows = []
    # the body lies in the cell: both in the cell's box (the whole volume's centroid)
    cell_box = tuple(box)
    cell_centroid = _centroid_within(body if body[cell_box].any() else cell, cell_box) * spacing
    vox = float(np.prod(spacing))
    # most pieces are a few voxels of membrane roughness: a piece of n voxels cannot reach
    # min_length_um (:func:`_length_bound`), so it is dropped before any geodesic work
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    for k, sl in enumerate(ndimage.find_objects(pieces), start=1):
        if sl is None or _length_bound(int(sizes[k]), spacing) < min_length_um:
            continue
        big = tuple(
            slice(max(s.start + o - 1, 0), min(s.stop + o + 1, dim))
            for s, o, dim in zip(sl, origin, cell.shape, strict=True)
        )
        piece = (
            pieces[tuple(slice(b.start - o, b.stop - o) for b, o in zip(big, origin, strict=True))]
            == k
        )
        if piece.sum() * vox < min_volume_um3:
            continue
        start = np.array([s.start for s in big])
        row = _piece_row(k, piece, body[big], start, spacing, cell_centroid, min_length_um)
        if row is None or row["length_um"] < min_length_um:
            continue
        pid = len(rows) + 1
        row["protrusion_id"] = pid
        t = row["thickness_um"]
        if row["length_um"] < rod_ratio * t:
            row["type"] = "bleb"
        elif row["mean_width_um"] >= sheet_ratio * t:
            row["type"] = "lamellipodium"
        else:
            row["type"] = "filopodium"
        out[big][piece] = pid
        rows.append(row)
    table = pd.DataFrame(rows, columns=PROTRUSION_COLUMNS)
    return table.astype({"protrusion_id": int}), out


def _ellipsoid_area(a: float, b: float, c: float) -> float:
    p = 1.6075  # Knud Thomsen's approximation (≤ 1.1 % error)
    return float(4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p))


def surface_summary(
    cell_mask: np.ndarray,
    spacing_um,
    table: pd.DataFrame,
    *,
    body_radius_um: float = 0.5,
    body: np.ndarray | None = None,
    cell_surface_um2: float | None = None,
    cell_box: tuple[slice, ...] | None = None,
) -> pd.DataFrame:
    """One row per cell: protrusion counts, volume fraction and surface roughness.

    Parameters
    ----------
    cell_mask : ndarray of bool, shape (z, y, x)
    spacing_um : float or sequence of 3 floats
    table : pandas.DataFrame
        Output of :func:`protrusions` for this cell.
    body_radius_um : float
        As in :func:`protrusions` (ignored when ``body`` is given).
    body : ndarray of bool, optional
        A precomputed :func:`cell_body`.
    cell_surface_um2 : float, optional
        The area (µm²) of the cell's mesh (:data:`SURFACE_SMOOTH_ITERATIONS` Taubin
        iterations, as here) when the caller
        has it already (:func:`sxtflow.quantify.measure_objects` meshes the same surface);
        meshed here otherwise.
    cell_box : tuple of 3 slice, optional
        The cell mask's bounding box (:func:`sxtflow.segment.mask_box`) when the caller has
        it already: only it is read (the same result as without it).

    Returns
    -------
    pandas.DataFrame
        One row: ``cell_volume_um3``, ``body_volume_um3``, ``protrusion_volume_um3``,
        ``protrusion_volume_fraction``, ``n_protrusions``, ``n_filopodia``,
        ``n_lamellipodia``, ``n_blebs``, ``cell_surface_um2``, ``body_surface_um2``,
        ``surface_roughness``, ``body_roughness``, ``body_radius_um``.
    """
    from ._measure import _box_within, _mesh_area, _moments

    cell = np.asarray(cell_mask, dtype=bool)
    spacing = _spacing3(spacing_um)
    if body is None:
        body = cell_body(cell, spacing, body_radius_um, cell_box=cell_box)
    # the body lies in the cell: every count and box below reads the cell's box only
    inside = (slice(None),) * 3 if cell_box is None else tuple(cell_box)
    vox = float(np.prod(spacing))
    n_body = int(body[inside].sum())
    row: dict = {"cell_volume_um3": float(cell[inside].sum()) * vox}
    row["body_volume_um3"] = float(n_body) * vox
    pv = float(table["volume_um3"].sum()) if len(table) else 0.0
    row["protrusion_volume_um3"] = pv
    row["protrusion_volume_fraction"] = (
        pv / row["cell_volume_um3"] if cell[inside].any() else np.nan
    )
    row["n_protrusions"] = len(table)
    for name, col in (("filopodium", "n_filopodia"), ("lamellipodium", "n_lamellipodia")):
        row[col] = int((table["type"] == name).sum()) if len(table) else 0
    row["n_blebs"] = int((table["type"] == "bleb").sum()) if len(table) else 0
    areas = []
    for m, known in ((cell, cell_surface_um2), (body, None)):
        if not m[inside].any():
            areas.append(np.nan)
            continue
        if known is not None:
            areas.append(float(known))
            continue
        sl = _box_within(m, cell_box)
        areas.append(
            _mesh_area(m[sl], spacing, tuple(s.start for s in sl), SURFACE_SMOOTH_ITERATIONS)
        )
    row["cell_surface_um2"], row["body_surface_um2"] = areas
    row["surface_roughness"] = areas[0] / areas[1] - 1 if areas[1] else np.nan
    if n_body > 1:
        sl = _box_within(body, cell_box)  # coordinate moments slab by slab, not every voxel's
        _, _, cov = _moments(body[sl], [s.start for s in sl], spacing)
        cov = cov + np.diag(spacing**2 / 12.0)
        semi = np.sqrt(5 * np.clip(np.linalg.eigvalsh(cov), 0, None))
        row["body_roughness"] = areas[1] / _ellipsoid_area(*semi) - 1
    else:
        row["body_roughness"] = np.nan
    row["body_radius_um"] = float(body_radius_um)
    return pd.DataFrame([row])
