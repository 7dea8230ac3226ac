"""Stages mesh and measure, and the OME-Zarr export."""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..io import InputError
from ..options import DEFAULTS
from ._common import _MEASURE, PathLike, _label_table, _per_class, log

# --------------------------------------------------------------------------- analyse


def run_mesh(
    labels_path: PathLike,
    tomogram_path: PathLike,
    out_scene: PathLike,
    out_ply_dir: PathLike,
    out_render: PathLike,
    out_slices: PathLike,
    *,
    classes: Mapping[str, int],
    labels=None,
    smooth_iterations: int = DEFAULTS["mesh"]["smooth_iterations"],
) -> None:
    """Surfaces per class (GLB scene + PLY per class), a 3D render and a virtual-slice panel;
    colours from the label table ``labels`` (path, table, or None for the bundled one)."""
    from ..plot import render, slice_panel
    from ..quantify import class_meshes, write_ply, write_scene
    from ..quantify._mesh import _class_boxes

    table = _label_table(labels)
    colours = table.colours(classes)
    seg = _compact_labels(io.read_volume(labels_path))
    boxes = _class_boxes(seg.data)  # one pass: the panel's legend and the meshes' boxes
    shown = {k: v for k, v in classes.items() if k != "ice"}
    # the slice panel first, while only the labels are held: the LAC volume is not held
    # while meshing, nor are the meshes while it is read (peak memory)
    lac = io.read_volume(tomogram_path)
    slice_panel(
        lac, seg, {k: colours[k] for k in shown}, out_slices, table=table, class_boxes=boxes
    )
    del lac
    meshes = class_meshes(seg, shown, smooth_iterations=smooth_iterations, class_boxes=boxes)
    write_scene(out_scene, meshes, colours)
    with io.atomic_path(out_ply_dir, directory=True) as tmp:
        tmp.mkdir()
        for name, m in meshes.items():
            if len(m.faces):
                write_ply(tmp / f"{name}.ply", m)
    render(meshes, colours, out_render)


def run_measure(
    labels_path: PathLike,
    tomogram_path: PathLike,
    out_organelles: PathLike,
    out_cell: PathLike,
    out_chromatin: PathLike | None = None,
    out_profile: PathLike | None = None,
    out_surface: PathLike | None = None,
    *,
    classes: Mapping[str, int],
    min_volume_um3: float = _MEASURE["min_volume_um3"],
    smooth_iterations: int = DEFAULTS["mesh"]["smooth_iterations"],
    contact_distance_um: float | None = _MEASURE["contact_distance_um"],
    separate: Mapping[str, float] | None = None,
    chromatin: Mapping | None = None,
    surface: Mapping | None = None,
) -> None:
    """Per-object morphometry, LAC and relations; per-cell summary with surface protrusions;
    hetero/euchromatin split of the nucleus (table + radial profile; empty tables without a
    ``nucleus`` class). ``separate``, ``chromatin`` and ``surface`` default to the options of
    :mod:`sxtflow.options` (``separate``: the default entries of the classes given)."""
    from .. import quantify
    from ..quantify._measure import _box_within, _merge_boxes, _mesh_area
    from ..quantify._mesh import _class_boxes
    from ..quantify._protrusions import SURFACE_SMOOTH_ITERATIONS

    labels = _compact_labels(io.read_volume(labels_path))
    names = [k for k in classes if k != "ice"]
    spacing = labels.spacing_um
    lab = labels.data
    values = [classes[k] for k in names]
    chrom = {**DEFAULTS["chromatin"], **(chromatin or {})}
    # peak memory: the cell's surface (cell body, protrusions) before the LAC volume is
    # read; of that volume only the part that is measured is kept: the box of every
    # measured class (all objects and the cell lie in it; the rest of the kept volume is
    # never written, so never resident) and the nuclei's box with the chromatin's
    # smoothing margin
    # every class's box in one pass over the labels: all later whole-volume work (the
    # cell, its box, the instances, the objects' boxes, the nuclei) reads only these boxes
    boxes = _class_boxes(lab)
    union_box = _merge_boxes(boxes.get(v) for v in values)
    cell = quantify.cell_mask(lab, values, box=union_box)
    # the cell's mesh, once: its area is the cell row's and the roughness's
    csl = _box_within(cell, union_box) if union_box is not None else None
    cell_area = (
        _mesh_area(cell[csl], np.asarray(spacing), tuple(b.start for b in csl), smooth_iterations)
        if csl is not None
        else None
    )
    prot = summary = None
    if out_surface is not None:
        opts = {**DEFAULTS["surface"], **(surface or {})}
        radius = float(opts.pop("body_radius_um"))
        body = quantify.cell_body(cell, spacing, radius, cell_box=csl)
        # [0]: the protrusions' label volume (int32, whole volume) is not kept
        prot = quantify.protrusions(cell, spacing, body=body, cell_box=csl, **opts)[0]
        summary = quantify.surface_summary(
            cell, spacing, prot, body=body, body_radius_um=radius, cell_box=csl,
            # the same mesh when measure smooths as surface_summary does
            cell_surface_um2=cell_area if smooth_iterations == SURFACE_SMOOTH_ITERATIONS else None,
        )  # fmt: skip
        del body
    _release_memory()  # the surface work's meshes and crops go before the LAC volume comes
    nucleus = nuc_box = None
    if out_chromatin is not None and boxes.get(classes.get("nucleus")) is not None:
        nuc_box = quantify.chromatin_box(
            lab.shape, spacing, chrom.get("smooth_sigma_um"), box=boxes[classes["nucleus"]]
        )
        nucleus = lab[nuc_box] == classes["nucleus"]
    lac = io.read_volume(tomogram_path)
    if lab.shape != lac.data.shape:
        raise InputError(
            labels_path,
            f"shape {lab.shape} differs from the tomogram's {lac.data.shape}",
        )
    lac_voxel_nm = lac.voxel_nm
    kept = np.zeros(lab.shape, dtype=lac.data.dtype)  # pages never written stay unallocated
    if union_box is not None:
        kept[union_box] = lac.data[union_box]
    nuc_lac = np.array(lac.data[nuc_box]) if nuc_box is not None else None
    del lac
    lacs = [io.Volume(kept, lac_voxel_nm)]
    del kept
    separate = _per_class(separate, _MEASURE["separate"], classes)
    split = quantify.instances(
        lab, {k: classes[k] for k in names}, spacing_um=tuple(spacing), separate=separate,
        class_boxes=boxes,
    )  # fmt: skip
    objects = quantify.measure_objects(
        labels,
        lacs.pop(),
        dict(classes),
        min_volume_um3=min_volume_um3,
        smooth_iterations=smooth_iterations,
        relations=True,
        contact_distance_um=contact_distance_um,
        separate=separate,
        cell=cell,
        instance_split=split,
        cell_surface_um2=cell_area,
        box=union_box,
    )
    del cell, split
    io.write_table(out_organelles, objects)
    cell_row = quantify.cell_summary(objects, classes=names)
    del objects
    if out_surface is not None:
        io.write_table(out_surface, prot)
        # the cell's own volume and surface come from measure (one column each)
        summary = summary.drop(columns=[c for c in summary.columns if c in cell_row.columns])
        cell_row = pd.concat([cell_row, summary], axis=1)
    if out_chromatin is not None:
        _write_chromatin(nuc_lac, nucleus, spacing, chrom, out_chromatin, out_profile)
    io.write_table(out_cell, cell_row)


def run_chromatin(
    labels_path: PathLike,
    tomogram_path: PathLike,
    out_chromatin: PathLike,
    out_profile: PathLike | None = None,
    *,
    classes: Mapping[str, int],
    chromatin: Mapping | None = None,
) -> None:
    """Hetero/euchromatin split of the nucleus: the table and the radial profile that
    :func:`run_measure` writes with ``out_chromatin`` (the same files), on their own.

    The workflow runs this apart from measure (rule ``chromatin``), beside mesh: it needs
    neither the cell nor the objects. Empty tables without a ``nucleus`` class or voxel.
    ``chromatin`` defaults to the options of :mod:`sxtflow.options`. Only the nuclei's box
    of the tomogram is kept (with the pre-smoothing's margin, :func:`~sxtflow.quantify.chromatin_box`).
    """
    from .. import quantify

    chrom = {**DEFAULTS["chromatin"], **(chromatin or {})}
    labels = _compact_labels(io.read_volume(labels_path))
    spacing = labels.spacing_um
    nucleus = nuc_box = nuc_lac = None
    if "nucleus" in classes:
        nucleus = labels.data == classes["nucleus"]
        nuc_box = quantify.chromatin_box(nucleus, spacing, chrom.get("smooth_sigma_um"))
        nucleus = nucleus[nuc_box].copy() if nuc_box is not None else None
    shape = labels.data.shape
    del labels
    if nuc_box is not None:
        lac = io.read_volume(tomogram_path)
        if lac.data.shape != shape:
            raise InputError(
                labels_path, f"shape {shape} differs from the tomogram's {lac.data.shape}"
            )
        nuc_lac = np.array(lac.data[nuc_box])
        del lac
    _write_chromatin(nuc_lac, nucleus, spacing, chrom, out_chromatin, out_profile)


def _write_chromatin(nuc_lac, nucleus, spacing, chrom, out_chromatin, out_profile) -> None:
    """The chromatin table (and profile) of the nuclei's crops (LAC µm⁻¹, mask; None
    without a nucleus): the same table as on the whole volume (chromatin_box)."""
    from .. import quantify

    if nucleus is None or not nucleus.any():
        table = pd.DataFrame()
    else:
        _, table = quantify.split_chromatin(nuc_lac, nucleus, spacing, **chrom)
    io.write_table(out_chromatin, table)
    if out_profile is not None:
        profile = quantify.radial_profile(table) if len(table) else pd.DataFrame()
        io.write_table(out_profile, profile)


def _release_memory() -> None:
    """Free what is unreachable now and give the C heap's freed memory back to the system.

    A Trimesh sits in reference cycles, so its arrays wait for the cycle collector; and
    glibc keeps freed blocks below its adaptive mmap threshold (up to 32 MiB: a cell's
    mesh arrays, crops) in the heap, resident, until ``malloc_trim``
    (:func:`._segment._release_freed_memory`, a no-op elsewhere than glibc).
    """
    from ._segment import _release_freed_memory

    gc.collect()
    _release_freed_memory()


def _compact_labels(volume):
    """A label volume as uint8 when its values fit (MRC stores uint8 as uint16): every
    mask and comparison of the volume then reads half the memory."""
    data = volume.data
    if data.dtype.kind in "iu" and data.dtype.itemsize > 1 and data.size:
        if (data.dtype.kind == "u" or data.min() >= 0) and data.max() <= 255:
            volume.data = data.astype(np.uint8)
    return volume


# --------------------------------------------------------------------------- export


def run_export_ome_zarr(
    tomogram_path: PathLike,
    out_dir: PathLike,
    *,
    labels: Mapping[str, PathLike] | None = None,
    probabilities: PathLike | None = None,
    levels: int | str = "auto",
    chunks: Sequence[int] = (64, 128, 128),
    label_table=None,
) -> dict:
    """A sample as OME-Zarr (NGFF 0.5, multiscale, µm): tomogram + label images + probabilities.

    Writes ``out_dir/tomogram.ome.zarr`` (LAC in µm⁻¹, with ``labels/<name>`` for every entry
    of ``labels``: name → label volume on the tomogram's grid) and, when ``probabilities``
    (the predict rule's zarr store) is given, ``out_dir/probabilities.ome.zarr`` (one channel
    per class). ``levels``: pyramid levels (``"auto"``: halve while the smallest axis keeps
    16 voxels, at most 6). ``label_table`` (a :class:`~sxtflow.labels.LabelTable` or its
    path; default the bundled table) gives the label images' names and colours. Each store appears only when complete (other files in
    ``out_dir`` are left alone).

    Returns
    -------
    dict
        ``{"levels": int, "labels": [names], "probabilities": bool}``.
    """
    import zarr

    from .. import ngff
    from ..segment import read_labels_on_grid

    vol = io.read_volume(tomogram_path)
    shape = vol.data.shape
    n_levels = ngff.auto_levels(shape) if levels == "auto" else int(levels)
    table = _label_table(label_table)
    label_vols = {}
    for name, path in (labels or {}).items():
        label_vols[str(name)] = read_labels_on_grid(path, shape, vol.voxel_nm, what="label volume")
    probs = None
    if probabilities:
        io.verify_store(probabilities)  # its completion record: complete and unchanged
        try:
            probs = zarr.open_group(str(probabilities), mode="r")["probabilities"]
        except Exception as exc:
            raise InputError(probabilities, f"not a probabilities store ({exc})") from exc
        if tuple(probs.shape[1:]) != shape:
            raise InputError(
                probabilities, f"shape {tuple(probs.shape)} does not match the tomogram's {shape}"
            )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out_dir / "tomogram.ome.zarr", directory=True) as image:
        ngff.write_image(
            image, vol.data, vol.voxel_nm, name="tomogram", levels=n_levels, chunks=chunks
        )
        for name, data in label_vols.items():
            ngff.write_labels(
                image, name, data, vol.voxel_nm, levels=n_levels, table=table, chunks=chunks
            )
    if probs is not None:
        classes = {str(k): int(v) for k, v in dict(probs.attrs.get("classes", {})).items()}
        names = sorted(classes, key=classes.get) or [f"class_{i}" for i in range(probs.shape[0])]
        colours = [table.colour(n) if n in table.names else "#ffffff" for n in names]
        with io.atomic_path(out_dir / "probabilities.ome.zarr", directory=True) as tmp:
            ngff.write_image(
                tmp, probs, vol.voxel_nm, name="probabilities", levels=n_levels,
                chunks=chunks, channels=names, colours=colours,
            )  # fmt: skip
    log.info(
        "OME-Zarr: %d levels, labels %s%s", n_levels, list(label_vols),
        ", probabilities" if probs is not None else "",
    )  # fmt: skip
    return {"levels": n_levels, "labels": list(label_vols), "probabilities": probs is not None}
