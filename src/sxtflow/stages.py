"""One function per pipeline stage, from files to files.

The command line (``sxtflow <stage>``) and the Snakemake scripts call these and nothing else,
so a reader goes rule → script → one function here → the science module. Every function
reads its inputs through :mod:`sxtflow.io` (validated, clear errors) and writes atomically.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import io
from .io import InputError, Volume

log = logging.getLogger("sxtflow")

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- simulate


def run_simulate(
    out_projections: PathLike,
    out_labels: PathLike,
    out_lac: PathLike,
    *,
    cell_type: str,
    shape: Sequence[int],
    voxel_nm: float,
    seed: int,
    condition: Mapping | None = None,
    n_angles: int = 120,
    tilt_range_deg: float | None = None,
    photons: float | None = 3000.0,
    blur_nm: float = 0.0,
    jitter_px: float = 0.0,
    energy_ev: float = 517.0,
) -> None:
    """Simulate one cell: truth LAC (µm⁻¹) and labels, then its raw tilt series (HDF5)."""
    from . import simulate

    log.info(
        "simulating a %s cell, %s voxels of %.1f nm, seed %d", cell_type, shape, voxel_nm, seed
    )
    lac, labels = simulate.simulate_cell(
        cell_type,
        tuple(shape),
        voxel_nm,
        seed=seed,
        condition=dict(condition or {}),
        energy_ev=energy_ev,
    )
    theta = simulate.tilt_angles(n_angles, tilt_range_deg)
    proj = simulate.project(
        lac, theta, photons=photons, blur_nm=blur_nm, jitter_px=jitter_px, seed=seed + 1
    )
    io.write_volume(out_lac, lac)
    io.write_volume(out_labels, labels)
    io.write_projections(out_projections, proj)


def run_annotate(
    truth_labels: PathLike,
    out: PathLike,
    *,
    classes: Sequence[str],
    slices_per_class: int = 3,
    mode: str = "scribbles",
    rim: bool = False,
    seed: int = 0,
) -> None:
    """Virtual annotator: sparse, manual-style labels drawn from a truth label volume."""
    from . import simulate

    truth = io.read_volume(truth_labels)
    ann = simulate.annotate(
        truth, list(classes), slices_per_class=slices_per_class, seed=seed, mode=mode, rim=rim
    )
    n = int(np.count_nonzero(ann.data))
    log.info("annotated %d voxels (%.2f %% of the volume)", n, 100.0 * n / ann.data.size)
    io.write_volume(out, ann)


# --------------------------------------------------------------------------- reconstruct


def _named(path: PathLike, func):
    """``func`` whose errors about its input (no file known to it) name ``path``."""

    def call(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            if exc.path is not None:
                raise
            raise InputError(path, exc.problem) from exc
        except ValueError as exc:
            raise InputError(path, str(exc)) from exc

    return call


def run_reconstruct(
    raw: PathLike,
    out_tomogram: PathLike,
    out_qc: PathLike | None = None,
    out_preview: PathLike | None = None,
    *,
    kind: str = "projections",
    voxel_nm: float | None = None,
    algorithm: str = "auto",
    filter: str = "shepp-logan",  # noqa: A002 - the config key's name
    center: str | float = "auto",
    iterations: int = 100,
    backend: str = "builtin",
    stripe: bool = False,
    align: bool = False,
    binning: int = 1,
    crop_rows: Sequence[int] | None = None,
    crop_cols: Sequence[int] | None = None,
    tv_weight: float = 0.01,
) -> Volume:
    """Projections → calibrated LAC tomogram (µm⁻¹); a tomogram input is checked and copied.

    ``voxel_nm`` (nm) overrides the file's pixel/voxel size; NaN or None means "from the file".
    """
    from . import qc, reconstruct

    if voxel_nm is not None and not np.isfinite(voxel_nm):
        voxel_nm = None
    sinogram = None
    if kind == "tomogram":
        vol = io.read_volume(raw, voxel_nm)
        io.check_lac(vol.data, raw)
        if vol.data.dtype.kind != "f":
            vol = Volume(vol.data.astype(np.float32), vol.voxel_nm, vol.meta)
        vol.meta.setdefault("unit", "1/um")
        vol.meta["ice_lac_per_um"] = float(reconstruct.ice_lac(vol.data))
    else:
        proj = io.read_projections(raw, pixel_nm=voxel_nm)
        if proj.pixel_nm is None:
            raise InputError(raw, "no pixel size in the file; give voxel_nm in the sample sheet")
        vol = _named(raw, reconstruct.reconstruct)(
            proj,
            algorithm=algorithm,
            center=center,
            backend=backend,
            filter_name=filter,
            iterations=iterations,
            stripe=stripe,
            align=align,
            binning=binning,
            crop_rows=crop_rows,
            crop_cols=crop_cols,
            tv_weight=tv_weight,
        )
        vol.meta["field_of_view"] = "cylinder"  # parallel beam: the inscribed cylinder
        sinogram = proj.data[:, proj.data.shape[1] // 2, :]
        if "shifts_px" in proj.meta:
            vol.meta["true_shifts_rms_px"] = float(
                np.sqrt(np.mean(np.square(proj.meta["shifts_px"])))
            )
    io.write_volume(out_tomogram, vol)
    if out_qc:
        io.write_json(
            out_qc, {"input": str(raw), "kind": kind, "voxel_nm": vol.voxel_nm, **vol.meta}
        )
    if out_preview:
        qc.reconstruction_preview(vol, out_preview, sinogram=sinogram)
    return vol


# --------------------------------------------------------------------------- segment


def feature_spec(sigmas=None, families=None, family_sigmas=None, **_ignored):
    """The :class:`~sxtflow.features.FeatureSpec` of the config's ``features`` section
    (``block`` and other keys are ignored; omitted keys take the spec's defaults)."""
    from .features import FeatureSpec

    return FeatureSpec(
        **{k: tuple(v) for k, v in (("sigmas", sigmas), ("families", families)) if v is not None},
        family_sigmas=family_sigmas or (),
    )


def run_features(
    tomogram: PathLike,
    out: PathLike,
    *,
    sigmas: Sequence[float] | None = None,
    families: Sequence[str] | None = None,
    family_sigmas: dict[str, Sequence[float]] | None = None,
    block: Sequence[int] = (64, 64, 64),
) -> None:
    """Multi-scale voxel features of a tomogram, block-wise, into a zarr store.

    ``sigmas`` and ``family_sigmas`` (family → scales, overriding ``sigmas`` for that
    family) are in voxels; see :class:`sxtflow.features.FeatureSpec`.
    """
    from . import features

    spec = feature_spec(sigmas, families, family_sigmas)
    block = check_block(block)
    vol = io.read_volume(tomogram)
    io.check_lac(vol.data, tomogram)
    log.info(
        "%d features (%s) on %s voxels", spec.n_features, ", ".join(spec.families), vol.data.shape
    )
    features.write_features(out, vol, spec, block=block)


def check_block(block: Sequence[int], shape: Sequence[int] | None = None) -> tuple[int, ...]:
    """A block size ``(z, y, x)`` of integers ≥ 1, clipped to ``shape`` when given.

    Raises ``ValueError`` for anything else (a block of 0 voxels would never finish).
    """
    try:
        out = tuple(int(b) for b in block)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or min(out) < 1 or any(float(b) != int(b) for b in block):
        raise ValueError(f"block must be three integers ≥ 1 (z, y, x voxels), got {block!r}")
    if shape is not None:
        out = tuple(min(b, int(n)) for b, n in zip(out, shape, strict=True))
    return out


def _read_annotation(path: PathLike, shape, voxel_nm, what: str = "annotation") -> np.ndarray:
    """A sparse label volume on the tomogram's grid (0 = not annotated), or a clear error."""
    try:
        ann = io.read_volume(path, voxel_nm=None)
    except InputError as exc:
        if "no voxel size" not in exc.problem:
            raise
        ann = io.read_volume(path, voxel_nm=voxel_nm)
    if ann.data.shape != tuple(shape):
        raise InputError(
            path, f"{what} shape {ann.data.shape} differs from the tomogram's {tuple(shape)}"
        )
    if not np.allclose(ann.voxel_nm, voxel_nm, rtol=1e-3):
        raise InputError(
            path,
            f"{what} voxel size {ann.voxel_nm} nm differs from the tomogram's {voxel_nm} nm",
        )
    data = ann.data
    if data.dtype.kind == "f":
        if not np.all(data == np.round(data)):
            raise InputError(path, f"{what} holds non-integer values; expected label values")
    if data.min() < 0 or data.max() > 255:
        raise InputError(path, f"{what} values {data.min()}..{data.max()} are outside 0..255")
    return data.astype(np.uint8)


def run_train(
    features_paths: Sequence[PathLike],
    annotation_paths: Sequence[PathLike],
    out_model: PathLike,
    *,
    classes: Mapping[str, int],
    seed: int = 0,
    estimator: str = "random_forest",
    n_estimators: int = 100,
    max_depth: int | None = 18,
    min_samples_leaf: int = 3,
    max_per_class: int = 50000,
    class_weight: str = "balanced",
    threads: int = 1,
) -> dict:
    """Train the voxel classifier on the sparse annotations of one or more tomograms."""
    from . import features

    if len(features_paths) != len(annotation_paths) or not features_paths:
        raise ValueError("train needs one annotation per feature store, and at least one")
    pairs = []
    spec = None
    for fpath, apath in zip(features_paths, annotation_paths, strict=True):
        arr, fspec, voxel_nm = features.open_features(fpath)
        if spec is not None and fspec != spec:
            raise InputError(fpath, "feature specification differs from the other tomograms'")
        spec = fspec
        ann = _read_annotation(apath, arr.shape[1:], voxel_nm)
        pairs.append((arr, ann, str(apath)))
    options = dict(
        n_estimators=n_estimators, max_depth=max_depth, min_samples_leaf=min_samples_leaf,
        seed=seed, threads=threads, max_per_class=max_per_class, estimator=estimator,
        class_weight=class_weight,
    )  # fmt: skip
    return _train_and_save(pairs, spec, classes, out_model, annotation_paths, **options)[1]


def _train_and_save(pairs, spec, classes, out_model, annotation_paths, *, threads, **options):
    """``classify.train`` on ``(features, annotation, path)`` pairs; the model saved (skops)."""
    from . import classify

    model, card = classify.train(pairs, dict(classes), spec=spec, n_jobs=threads, **options)
    card["training_annotations"] = [str(p) for p in annotation_paths]
    if out_model is not None:
        classify.save_model(out_model, model, card)
    return model, card


def _training_block(annotation: np.ndarray, halo: int, block: Sequence[int]) -> tuple:
    """The z-extent of feature blocks that computes the fewest voxels for this annotation.

    Training reads features only of blocks holding annotated voxels, each grown by the
    halo: a few painted slices want thin blocks, a virtual annotator's many slices thick
    ones. The features (and so the model) do not depend on the choice.
    """
    painted = np.flatnonzero(annotation.reshape(annotation.shape[0], -1).any(axis=1))
    nz = annotation.shape[0]
    best, best_cost = None, np.inf
    for bz in sorted({1, 4, 16, int(block[0])}):
        starts = np.unique(painted // bz) * bz
        cost = sum(min(bz, nz - z0) + 2 * halo for z0 in starts)
        if cost < best_cost:
            best, best_cost = bz, cost
    return (best, *(int(b) for b in block[1:]))


def run_train_tomograms(
    tomogram_paths: Sequence[PathLike],
    annotation_paths: Sequence[PathLike],
    out_model: PathLike | None,
    *,
    classes: Mapping[str, int],
    spec,
    block: Sequence[int] = (64, 128, 128),
    threads: int = 1,
    cache: dict | None = None,
    **options,
):
    """Train as :func:`run_train` does, from tomograms instead of feature stores.

    Features are computed only for the blocks that hold annotated voxels
    (:class:`sxtflow.features.BlockFeatures`); they equal a feature store's exactly, so the
    model equals the one :func:`run_train` makes from ``features.zarr`` of the same
    tomograms with the same ``spec`` and options. Used by the annotation loop
    (``sxtflow napari``), where a few painted slices should not cost a whole feature store.
    ``cache`` (a dict, kept by the caller) holds computed feature blocks per tomogram, so
    training again after more painting computes only the new blocks. ``options`` are
    :func:`run_train`'s (``seed``, ``estimator``, ``n_estimators``, ``max_depth``,
    ``min_samples_leaf``, ``max_per_class``, ``class_weight``), with its defaults.

    Returns
    -------
    (model, card)
        The fitted classifier and its card; saved to ``out_model`` unless it is None.
    """
    from . import features

    if len(tomogram_paths) != len(annotation_paths) or not tomogram_paths:
        raise ValueError("training needs one annotation per tomogram, and at least one")
    pairs = []
    for tpath, apath in zip(tomogram_paths, annotation_paths, strict=True):
        vol = io.read_volume(tpath)
        ann = _read_annotation(apath, vol.data.shape, vol.voxel_nm)
        chunks = _training_block(ann, spec.halo, block)
        blocks = None
        if cache is not None:  # per tomogram file (and its modification time), spec and chunks
            key = (str(tpath), os.stat(tpath).st_mtime_ns, json.dumps(spec.to_dict()), chunks)
            blocks = cache.setdefault(key, {})
        pairs.append((features.BlockFeatures(vol.data, spec, chunks, blocks), ann, str(apath)))
    import inspect

    params = inspect.signature(run_train).parameters.values()  # run_train's defaults
    defaults = {
        p.name: p.default
        for p in params
        if p.kind is p.KEYWORD_ONLY and p.default is not p.empty and p.name != "threads"
    }
    options = {**defaults, **options}
    return _train_and_save(
        pairs, spec, classes, out_model, annotation_paths, threads=threads, **options
    )


def run_predict(
    tomogram_path: PathLike,
    model_path: PathLike,
    out_labels: PathLike,
    out_uncertainty: PathLike | None = None,
    out_probabilities: PathLike | None = None,
    *,
    out_suggestions: PathLike | None = None,
    out_preview: PathLike | None = None,
    block: Sequence[int] = (64, 128, 128),
    threads: int = 1,
) -> None:
    """Segment a tomogram block-wise: features per block (with halo) classified at once.

    No feature store is needed, so memory is bounded by the block, not the tomogram.
    Writes labels (class values), uncertainty (1 − probability margin), optionally the
    probabilities as a zarr store (``probabilities``, float32, ``(classes, z, y, x)``, channels
    in ascending class value; attrs ``classes``, ``voxel_nm``) and the z-slices where one more
    annotation would help most (JSON). Voxels outside a reconstruction's field of view (the
    inscribed cylinder, ``meta["field_of_view"] == "cylinder"``) are 0 (no data).
    """
    import contextlib

    from . import classify

    block = check_block(block)
    vol = io.read_volume(tomogram_path)
    io.check_lac(vol.data, tomogram_path)
    model, card = classify.load_model(model_path)
    shape = vol.data.shape
    mask = prediction_mask(vol)
    block = check_block(block, shape)  # a block beyond the volume is the whole volume
    unc = np.zeros(shape, np.float32)
    with contextlib.ExitStack() as stack:
        probs = None
        if out_probabilities:
            tmp = stack.enter_context(io.atomic_path(out_probabilities, directory=True))
            n_cls = len(card["classes"])
            probs = io.create_zarr_array(tmp, "probabilities", (n_cls, *shape), (n_cls, *block))
            probs.attrs.update({"classes": card["classes"], "voxel_nm": list(vol.voxel_nm)})
        labels, _ = classify.predict_volume(
            vol.data,
            model,
            card,
            block=block,
            n_jobs=threads,
            out_probabilities=probs,
            out_uncertainty=unc,
            mask=mask,
        )
    io.write_volume(out_labels, Volume(labels, vol.voxel_nm, {"classes": card["classes"]}))
    if out_uncertainty:
        io.write_volume(
            out_uncertainty, Volume(unc, vol.voxel_nm, {"unit": "1 - probability margin"})
        )
    ice = card["classes"].get("ice", 0)
    slices = classify.suggest_slices(unc, labels, outside=(0, ice))
    if out_suggestions:
        io.write_json(
            out_suggestions,
            {"slices": [{"z": int(z), "mean_uncertainty": float(u)} for z, u in slices]},
        )
    if out_preview:
        from .qc import uncertainty_preview

        uncertainty_preview(
            Volume(unc, vol.voxel_nm), labels, out_preview, suggested_z=[z for z, _ in slices]
        )


def run_refine(
    prediction_path: PathLike,
    out_labels: PathLike,
    *,
    classes: Mapping[str, int],
    rules: Mapping[str, Mapping] | None = None,
) -> None:
    """Per-class clean-up (debris, object count, holes) of a predicted label volume."""
    from .refine import refine_labels

    pred = io.read_volume(prediction_path)
    out = refine_labels(pred.data, classes, pred.spacing_um, rules)
    changed = int(np.count_nonzero(out != pred.data))
    log.info("refine: %d voxels relabelled (%.3f %%)", changed, 100.0 * changed / out.size)
    io.write_volume(out_labels, Volume(out, pred.voxel_nm, pred.meta))


def prediction_mask(vol: Volume) -> np.ndarray | None:
    """Voxels the classifier labels: a reconstruction's field of view (the cylinder inscribed
    in the x-y square, ``meta["field_of_view"] == "cylinder"``), else all (None)."""
    if vol.meta.get("field_of_view") != "cylinder":
        return None
    return np.broadcast_to(cylinder_mask(vol.data.shape)[None], vol.data.shape)


def cylinder_mask(shape) -> np.ndarray:
    """(y, x) bool mask of the cylinder inscribed in the x-y square of a ``(z, y, x)`` shape."""
    ny, nx = shape[1:]
    y = np.arange(ny) - ny // 2
    x = np.arange(nx) - nx // 2
    return (y[:, None] ** 2 + x[None, :] ** 2) <= (min(ny, nx) // 2) ** 2


def read_truth(path: PathLike, classes: Mapping[str, int]) -> Volume:
    """A full ground-truth label volume mapped onto the segmentation classes."""
    from .labels import default_labels

    truth = io.read_volume(path)
    values = np.unique(truth.data)
    known = set(default_labels().table["value"].astype(int)) | {0}
    unknown = [int(v) for v in values if int(v) not in known]
    if unknown:
        raise InputError(path, f"unknown label values {unknown} (see the bundled label table)")
    mapped = default_labels().to_classes(truth.data, list(classes))
    return Volume(mapped, truth.voxel_nm, truth.meta)


def run_evaluate(
    labels_path: PathLike,
    truth_path: PathLike,
    out: PathLike,
    *,
    classes: Mapping[str, int],
    sample: str,
    annotated: bool = False,
) -> pd.DataFrame:
    """Dice/IoU per class of a predicted segmentation against the truth."""
    from .evaluate import dice_iou

    pred = io.read_volume(labels_path)
    truth = read_truth(truth_path, classes)
    if pred.data.shape != truth.data.shape:
        raise InputError(
            truth_path, f"shape {truth.data.shape} differs from the prediction's {pred.data.shape}"
        )
    # voxels without truth (0: outside the sample, or not segmented) are not scored
    scored = truth.data != 0
    table = dice_iou(np.where(scored, pred.data, 0), truth.data, dict(classes))
    table.insert(0, "sample", sample)
    table.insert(1, "annotated", bool(annotated))
    io.write_table(out, table)
    return table


# --------------------------------------------------------------------------- analyse


def _colours(classes: Mapping[str, int]) -> dict[str, str]:
    from .labels import default_labels

    table = default_labels()
    out = {name: table.colour(name) for name in classes}
    out["cell"] = table.colour("cytoplasm")
    return out


def run_mesh(
    labels_path: PathLike,
    tomogram_path: PathLike,
    out_scene: PathLike,
    out_ply_dir: PathLike,
    out_render: PathLike,
    out_slices: PathLike,
    *,
    classes: Mapping[str, int],
    smooth_iterations: int = 20,
) -> None:
    """Surfaces per class (GLB scene + PLY per class), a 3D render and a virtual-slice panel."""
    from . import mesh

    labels = io.read_volume(labels_path)
    lac = io.read_volume(tomogram_path)
    shown = {k: v for k, v in classes.items() if k != "ice"}
    meshes = mesh.class_meshes(labels, shown, smooth_iterations=smooth_iterations)
    colours = _colours(classes)
    mesh.write_scene(out_scene, meshes, colours)
    with io.atomic_path(out_ply_dir, directory=True) as tmp:
        tmp.mkdir()
        for name, m in meshes.items():
            if len(m.faces):
                mesh.write_ply(tmp / f"{name}.ply", m)
    mesh.render(meshes, colours, out_render)
    mesh.slice_panel(lac, labels, {classes[k]: colours[k] for k in shown}, out_slices)


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
    min_volume_um3: float = 0.0,
    smooth_iterations: int = 20,
    contact_distance_um: float | None = None,
    separate: Mapping[str, float] | None = None,
    chromatin: Mapping | None = None,
    surface: Mapping | None = None,
) -> None:
    """Per-object morphometry, LAC and relations; per-cell summary with surface protrusions;
    hetero/euchromatin split of the nucleus (table + radial profile)."""
    from . import chromatin as chrom
    from . import measure
    from . import surface as surf

    labels = io.read_volume(labels_path)
    lac = io.read_volume(tomogram_path)
    if labels.data.shape != lac.data.shape:
        raise InputError(
            labels_path, f"shape {labels.data.shape} differs from the tomogram's {lac.data.shape}"
        )
    objects = measure.measure_objects(
        labels,
        lac,
        dict(classes),
        min_volume_um3=min_volume_um3,
        smooth_iterations=smooth_iterations,
        relations=True,
        contact_distance_um=contact_distance_um,
        separate=dict(separate or {}),
    )
    io.write_table(out_organelles, objects)
    names = [k for k in classes if k != "ice"]
    cell_row = measure.cell_summary(objects, classes=names)
    spacing = labels.spacing_um
    if out_surface is not None:
        opts = dict(surface or {})
        radius = float(opts.pop("body_radius_um", 0.5))
        cell = measure.cell_mask(labels.data, [classes[k] for k in names])
        body = surf.cell_body(cell, spacing, radius)
        prot, _ = surf.protrusions(cell, spacing, body=body, **opts)
        io.write_table(out_surface, prot)
        summary = surf.surface_summary(cell, spacing, prot, body=body, body_radius_um=radius)
        cell_row = pd.concat([cell_row, summary.drop(columns=["cell_volume_um3"])], axis=1)
    if out_chromatin is not None:
        nucleus = labels.data == classes["nucleus"] if "nucleus" in classes else None
        if nucleus is None or not nucleus.any():
            table = pd.DataFrame()
        else:
            _, table = chrom.split_chromatin(lac.data, nucleus, spacing, **(chromatin or {}))
        io.write_table(out_chromatin, table)
        if out_profile is not None:
            profile = chrom.radial_profile(table) if len(table) else pd.DataFrame()
            io.write_table(out_profile, profile)
    io.write_table(out_cell, cell_row)


# --------------------------------------------------------------------------- export


def run_export_ome_zarr(
    tomogram_path: PathLike,
    out_dir: PathLike,
    *,
    labels: Mapping[str, PathLike] | None = None,
    probabilities: PathLike | None = None,
    levels: int | str = "auto",
    chunks: Sequence[int] = (64, 128, 128),
) -> dict:
    """A sample as OME-Zarr (NGFF 0.5, multiscale, µm): tomogram + label images + probabilities.

    Writes ``out_dir/tomogram.ome.zarr`` (LAC in µm⁻¹, with ``labels/<name>`` for every entry
    of ``labels``: name → label volume on the tomogram's grid) and, when ``probabilities``
    (the predict rule's zarr store) is given, ``out_dir/probabilities.ome.zarr`` (one channel
    per class). ``levels``: pyramid levels (``"auto"``: halve while the smallest axis keeps
    16 voxels, at most 6). Each store appears only when complete (other files in
    ``out_dir`` are left alone).

    Returns
    -------
    dict
        ``{"levels": int, "labels": [names], "probabilities": bool}``.
    """
    import zarr

    from . import ngff
    from .labels import default_labels

    vol = io.read_volume(tomogram_path)
    shape = vol.data.shape
    n_levels = ngff.auto_levels(shape) if levels == "auto" else int(levels)
    table = default_labels()
    label_vols = {}
    for name, path in (labels or {}).items():
        label_vols[str(name)] = _read_annotation(path, shape, vol.voxel_nm, what="label volume")
    probs = None
    if probabilities:
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


# --------------------------------------------------------------------------- compare


def run_compare(
    cell_paths: Sequence[PathLike],
    organelle_paths: Sequence[PathLike],
    samples: Sequence[Mapping[str, str]],
    *,
    out_cells: PathLike,
    out_objects: PathLike,
    out_summary: PathLike,
    out_tests: PathLike,
    out_measures: PathLike,
    out_fractions: PathLike,
    out_lac: PathLike | None = None,
    chromatin_paths: Sequence[PathLike] = (),
    out_chromatin: PathLike | None = None,
    classes: Mapping[str, int],
    reference: str,
    measures: Sequence[str] | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Stack every cell's tables, summarise per condition, test conditions, plot.

    ``measures`` (config ``compare.measures``) names the primary measures: their own
    Benjamini–Hochberg family and the panels of the measures plot; every other column
    is tested as exploratory. Default :data:`sxtflow.compare.DEFAULT_PRIMARY_MEASURES`.
    """
    from . import compare

    sheet = pd.DataFrame(list(samples))
    names = list(sheet["sample"])
    if len(names) != len(cell_paths) or len(names) != len(organelle_paths):
        raise ValueError("one cell table and one organelle table per sample are needed")
    cells = compare.stack_tables(
        {s: io.read_table(p) for s, p in zip(names, cell_paths, strict=True)}, sheet
    )
    objects = compare.stack_tables(
        {s: io.read_table(p) for s, p in zip(names, organelle_paths, strict=True)}, sheet
    )
    organelle_classes = [c for c in classes if c not in ("ice", "cytoplasm")]
    # organelle measures aggregated per cell (the cell is the statistical unit)
    org = compare.per_cell(objects, classes=organelle_classes, samples=sheet)
    org = org.drop(columns=[c for c in org.columns if c.endswith("_count")])
    cells = cells.merge(org, on=["sample", "condition"], how="left")
    io.write_table(out_cells, cells)
    io.write_table(out_objects, objects)
    io.write_table(out_summary, compare.summarise(cells))
    primary = compare.primary_measures(cells, measures)
    tests = compare.test_conditions(
        cells, reference=reference, primary=primary, n_boot=n_boot, seed=seed, alpha=alpha
    )
    io.write_table(out_tests, tests)
    compare.plot_measures(cells, primary, out_measures, reference=reference, tests=tests)
    compare.plot_fractions(
        cells, [c for c in organelle_classes if f"{c}_fraction" in cells.columns], out_fractions
    )
    if out_lac:
        lac_classes = [c for c in classes if c != "ice" and c in set(objects["class"])]
        compare.plot_lac_histograms(objects, out_lac, classes=lac_classes, reference=reference)
    if out_chromatin:
        if len(chromatin_paths) != len(names):
            raise ValueError("one chromatin profile table per sample is needed")
        profiles = compare.stack_tables(
            {s: io.read_table(p) for s, p in zip(names, chromatin_paths, strict=True)}, sheet
        )
        compare.plot_radial_profiles(profiles, out_chromatin, reference=reference)
    primary_rows = tests[tests["family"] == "primary"]
    log.info(
        "%d cells, %d tests (%d primary), %d primary and %d exploratory significant at FDR %.2f",
        len(cells),
        len(tests),
        len(primary_rows),
        int(primary_rows["significant"].sum()),
        int(tests["significant"].sum() - primary_rows["significant"].sum()),
        alpha,
    )
    return tests


def stack_sample_tables(paths: Sequence[PathLike], out: PathLike) -> pd.DataFrame:
    """Concatenate per-sample tables (that already carry a ``sample`` column)."""
    table = pd.concat([io.read_table(p) for p in paths], ignore_index=True)
    io.write_table(out, table)
    return table
