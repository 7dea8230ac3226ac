"""Pictures of segmentations: headless 3D renders of meshes and orthogonal slice panels.

Meshes are in µm with vertex columns (x, y, z) (:mod:`sxtflow.quantify`); volumes ``(z, y, x)``
with their voxel size. matplotlib is imported inside the functions; every figure is written
atomically (:func:`sxtflow.io.atomic_path`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from ..core import Volume
from ..io import atomic_path
from ..quantify._mesh import _class_boxes

#: Voxels from which :func:`slice_panel` takes its grey-scale percentiles (at most).
_GREY_SAMPLE = 1 << 23


def _rgba(colour) -> np.ndarray:
    """``"#rrggbb"`` or ``"#rrggbbaa"`` (or any matplotlib colour) → uint8 RGBA."""
    from matplotlib.colors import to_rgba

    return np.round(np.asarray(to_rgba(colour)) * 255).astype(np.uint8)


def decimate_for_display(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """Coarsen a mesh by vertex clustering until it has at most about ``max_faces`` faces.

    For pictures only: the result is not watertight in general and must not be measured.
    """
    n = len(mesh.faces)
    if n <= max_faces or n == 0:
        return mesh
    edge = float(mesh.edges_unique_length.mean())
    pitch = edge * np.sqrt(n / max_faces)
    verts, faces = mesh.vertices, mesh.faces
    for _ in range(8):
        keys = np.floor(verts / pitch).astype(np.int64)
        keys -= keys.min(axis=0)
        span = keys.max(axis=0) + 1  # one integer per cell: a 1D unique is far cheaper
        flat = (keys[:, 0] * span[1] + keys[:, 1]) * span[2] + keys[:, 2]
        _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        new_verts = np.zeros((len(counts), 3))
        np.add.at(new_verts, inverse, verts)
        new_verts /= counts[:, None]
        f = inverse[faces]
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
        _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
        f = f[np.sort(first)]
        if len(f) <= max_faces:
            break
        pitch *= 1.3
    return trimesh.Trimesh(new_verts, f, process=False)


def render(
    meshes: dict[str, trimesh.Trimesh],
    colours: dict[str, str],
    path: str | os.PathLike,
    *,
    view: tuple[float, float] = (25.0, -60.0),
    alpha: dict[str, float] | None = None,
    max_faces: int = 150_000,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Render meshes to a PNG with matplotlib (headless, no GPU).

    All faces go into one :class:`~mpl_toolkits.mplot3d.art3d.Poly3DCollection` so they are
    depth-sorted together (painter's algorithm); each face is Lambert-shaded against a light
    at the camera.

    Parameters
    ----------
    meshes : dict of str to trimesh.Trimesh
        Name → mesh (µm, vertex columns (x, y, z)).
    colours : dict of str to str
        Name → colour (hex).
    path : path-like
        Output PNG (written atomically).
    view : (float, float)
        Camera elevation and azimuth in degrees (matplotlib ``view_init``).
    alpha : dict of str to float, optional
        Opacity per name. Default: 0.15 for ``"cell"`` and ``"cytoplasm"`` (so organelles
        show through), 1 otherwise.
    max_faces : int
        Meshes are coarsened (:func:`decimate_for_display`) to about this many faces in total.
    title : str, optional
    dpi : int

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    if alpha is None:
        alpha = {"cell": 0.15, "cytoplasm": 0.15}
    items = [(k, m) for k, m in meshes.items() if len(m.faces)]
    total = sum(len(m.faces) for _, m in items)
    elev, azim = np.deg2rad(view[0]), np.deg2rad(view[1])
    eye = np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)])
    polys, cols = [], []
    for name, mesh in items:
        budget = max(200, int(max_faces * len(mesh.faces) / max(total, 1)))
        m = decimate_for_display(mesh, budget)
        if len(m.faces) == 0:
            continue
        tri = m.vertices[m.faces]
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
        shade = 0.35 + 0.65 * np.abs(normals @ eye)
        rgba = _rgba(colours.get(name, "#999999")).astype(float) / 255.0
        c = np.empty((len(tri), 4))
        c[:, :3] = rgba[:3] * shade[:, None]
        c[:, 3] = alpha.get(name, rgba[3])
        polys.append(tri)
        cols.append(c)
    fig = Figure(figsize=(6, 6), dpi=dpi)
    ax = fig.add_subplot(projection="3d")
    if polys:
        allp = np.concatenate(polys)
        coll = Poly3DCollection(allp, facecolors=np.concatenate(cols), edgecolors="none")
        coll.set_zsort("average")
        ax.add_collection3d(coll)
        lo, hi = allp.reshape(-1, 3).min(0), allp.reshape(-1, 3).max(0)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_zlim(lo[2], hi[2])
        ax.set_box_aspect(np.maximum(hi - lo, 1e-6 * max(hi - lo)))
    ax.view_init(elev=view[0], azim=view[1])
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_zlabel("z (µm)")
    handles = [
        Rectangle((0, 0), 1, 1, color=np.asarray(_rgba(colours.get(k, "#999999"))) / 255)
        for k, _ in items
    ]
    if handles:
        ax.legend(handles, [k for k, _ in items], loc="upper left", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _nice_length(width_um: float) -> float:
    """A 1-2-5 scale-bar length close to a fifth of ``width_um``."""
    target = width_um / 5.0
    if target <= 0:
        return 0.0
    base = 10 ** np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * base <= target:
            return float(m * base)
    return float(base)


def _label_rgba(labels2d: np.ndarray, lut: dict[int, np.ndarray], opacity: float) -> np.ndarray:
    out = np.zeros((*labels2d.shape, 4))
    for value, rgba in lut.items():
        sel = labels2d == value
        out[sel, :3] = rgba[:3] / 255.0
        out[sel, 3] = opacity
    return out


def slice_panel(
    lac: Volume,
    labels: Volume,
    colours: dict,
    path: str | os.PathLike,
    *,
    centre=None,
    opacity: float = 0.35,
    title: str | None = None,
    dpi: int = 150,
    table=None,
    class_boxes: dict | None = None,
) -> Path:
    """Three orthogonal slices (xy, xz, yz) through the centre with a label overlay.

    Parameters
    ----------
    lac : Volume
        LAC volume (µm⁻¹), shape (z, y, x); grey scale from its 1st–99th percentile (of
        every k-th voxel along each axis when it has more than 8 M voxels).
    labels : Volume
        Class labels, same shape as ``lac``.
    colours : dict
        Label value (int) or label name (str, looked up in ``table``) → hex colour. Only
        listed labels are overlaid.
    path : path-like
        Output PNG (written atomically).
    centre : (int, int, int), optional
        Slice indices (z, y, x); default the volume centre.
    opacity : float
        Overlay opacity.
    title : str, optional
    dpi : int
    table : LabelTable, optional
        Label names and values (default :func:`sxtflow.labels.default_labels`).
    class_boxes : dict of int to tuple of 3 slice, optional
        Label value → bounding box of every value present in ``labels`` (as
        ``scipy.ndimage.find_objects`` gives them) when the caller has them already; found
        here otherwise (a pass over the volume).

    Returns
    -------
    Path
        Each panel is drawn in µm with the true aspect ratio and a scale bar.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    from ..labels import default_labels

    if lac.data.shape != labels.data.shape:
        raise ValueError(f"lac shape {lac.data.shape} and labels shape {labels.data.shape} differ")
    nz, ny, nx = lac.data.shape
    dz, dy, dx = lac.spacing_um
    cz, cy, cx = (nz // 2, ny // 2, nx // 2) if centre is None else (int(c) for c in centre)
    lut: dict[int, np.ndarray] = {}
    names: dict[int, str] = {}
    table = default_labels() if table is None else table
    for key, col in colours.items():
        value = table.value(key) if isinstance(key, str) else int(key)
        lut[value] = _rgba(col)
        names[value] = str(key) if isinstance(key, str) else table.name(value)
    step = max(1, int(np.ceil((lac.data.size / _GREY_SAMPLE) ** (1 / 3))))
    sample = np.asarray(lac.data[::step, ::step, ::step])  # every voxel up to 8 M voxels
    finite = sample[np.isfinite(sample)]
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    if vmax <= vmin:
        vmax = vmin + 1.0

    def ext(n_h, d_h, n_v, d_v):  # voxel centres at index * spacing, rows downwards
        return (-d_h / 2, (n_h - 0.5) * d_h, (n_v - 0.5) * d_v, -d_v / 2)

    panels = [
        (
            f"xy (z = {cz * dz:.2f} µm)",
            lac.data[cz],
            labels.data[cz],
            ext(nx, dx, ny, dy),
            "x",
            "y",
        ),
        (
            f"xz (y = {cy * dy:.2f} µm)",
            lac.data[:, cy],
            labels.data[:, cy],
            ext(nx, dx, nz, dz),
            "x",
            "z",
        ),
        (
            f"yz (x = {cx * dx:.2f} µm)",
            lac.data[:, :, cx],
            labels.data[:, :, cx],
            ext(ny, dy, nz, dz),
            "y",
            "z",
        ),
    ]
    widths = [nx * dx, nx * dx, ny * dy]
    fig = Figure(figsize=(13, 4.8), dpi=dpi)
    axes = fig.subplots(1, 3, width_ratios=widths)
    for ax, (name, img, lab, extent, xl, yl) in zip(axes, panels, strict=True):
        ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
        ax.imshow(_label_rgba(lab, lut, opacity), extent=extent, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(f"{xl} (µm)")
        ax.set_ylabel(f"{yl} (µm)")
        left, w, top, h = extent[0], extent[1] - extent[0], extent[3], extent[2] - extent[3]
        bar = _nice_length(w)
        if bar > 0:
            x0, y0 = left + 0.05 * w, top + 0.93 * h
            ax.add_patch(Rectangle((x0, y0), bar, 0.015 * h + 1e-9, color="white"))
            ax.text(
                x0 + bar / 2,
                y0 - 0.02 * h,
                f"{bar:g} µm",
                color="white",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    # one pass over the volume for every label (or the caller's)
    boxes = _class_boxes(labels.data) if class_boxes is None else class_boxes
    present = [v for v in lut if v in boxes]
    if present:
        fig.legend(
            [Patch(color=lut[v][:3] / 255.0) for v in present],
            [names[v] for v in present],
            loc="lower center",
            ncol=min(len(present), 8),
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(title or "orthogonal slices, LAC (µm⁻¹) with labels", fontsize=10)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path
