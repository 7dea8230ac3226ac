"""``sxtflow`` command line: one subcommand per pipeline stage.

The subcommands call the same functions as the Snakemake rules (:mod:`sxtflow.stages`), so a
stage can be run by hand on one file, e.g. ``sxtflow reconstruct raw.h5 tomo.mrc``.
Bad input ends with one line ``sxtflow: error: <file>: <problem>`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from . import __version__, stages
from .core import InputError
from .options import DEFAULTS
from .progress import log_to
from .segment import CLASS_WEIGHTS, ESTIMATORS

# every default below comes from sxtflow.options (as the config's and the stages' do)
_SIM, _REC, _FEAT, _TRAIN = (DEFAULTS[k] for k in ("simulate", "reconstruct", "features", "train"))


def _class_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _resolve_classes(args, parser) -> None:
    """``args.classes`` → {name: value} of ``--label-table`` (default: the bundled table);
    default classes from the options; an unknown name is a usage error."""
    from .labels import load_labels

    if not hasattr(args, "classes"):
        return
    table = load_labels(getattr(args, "label_table", None))
    names = args.classes or DEFAULTS["classes"]
    unknown = [n for n in names if n not in table.names]
    if unknown:
        parser.error(
            f"argument --classes: unknown label {unknown[0]!r}; known: {', '.join(table.names)}"
        )
    args.classes = table.class_values(names)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}")
    return value


def _block(text: str) -> tuple[int, int, int]:
    """``"64,64,64"`` → (z, y, x) voxels, each ≥ 1 (larger than the volume is clipped)."""
    try:
        block = _ints(text)
    except ValueError:
        block = ()
    if len(block) != 3 or min(block) < 1:
        raise argparse.ArgumentTypeError(f"expected three integers ≥ 1 (z,y,x), got {text!r}")
    return block


def _center(text: str) -> str | float:
    if text == "auto":
        return text
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected 'auto' or a column index, got {text!r}")
    return value


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def _family_sigmas(text: str) -> dict[str, list[float]]:
    """``"gaussian=0.7,1.6,8;ggm=1"`` → ``{"gaussian": [0.7, 1.6, 8.0], "ggm": [1.0]}``."""
    out = {}
    for item in filter(None, (t.strip() for t in text.split(";"))):
        family, sep, scales = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"expected family=s1,s2,…, got {item!r}")
        out[family.strip()] = _floats(scales)
    return out


def _depth(text: str) -> int | None:
    return None if text.lower() in ("none", "null") else int(text)


# --------------------------------------------------------------------------- file arguments

#: Each command's file arguments, checked in one place (:func:`check_paths`) before any work:
#: ``inputs`` are read; ``outputs`` map to the kind written there: ``"file"``, ``"store"`` (a
#: zarr directory, replaced as a whole) or ``"dir"`` (a directory the files below are written
#: into). Files written beside an argument (model card, MRC metadata sidecar) and the files a
#: compare sheet lists are added by :func:`_file_args`.
FILE_ARGS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "simulate": ((), {"projections": "file", "labels": "file", "lac": "file"}),
    "annotate": (("truth",), {"output": "file"}),
    "reconstruct": (("raw",), {"tomogram": "file", "qc": "file", "preview": "file"}),
    "features": (("tomogram",), {"output": "store"}),
    "train": (("features", "annotations"), {"model": "file"}),
    "predict": (("tomogram", "model"), {"labels": "file", "uncertainty": "file"}),
    "evaluate": (("labels", "truth"), {"output": "file"}),
    "mesh": (("labels", "tomogram"), {"outdir": "dir"}),
    "measure": (("labels", "tomogram"), {"organelles": "file", "cell": "file"}),
    "compare": (("sheet",), {"outdir": "dir"}),
    "export-ome-zarr": (("tomogram", "probabilities"), {"outdir": "dir"}),
    "napari": ((), {}),
}
_MRC_OUTPUTS = {"simulate": ("labels", "lac"), "annotate": ("output",),
                "reconstruct": ("tomogram",), "predict": ("labels", "uncertainty")}  # fmt: skip
MESH_FILES = {"scene": "scene.glb", "ply": "ply", "render": "render.png", "slices": "slices.png"}
COMPARE_FILES = {"out_cells": "cells.tsv", "out_objects": "organelles.tsv",
                 "out_summary": "summary.tsv", "out_tests": "tests.tsv",
                 "out_measures": "measures.png", "out_fractions": "fractions.png"}  # fmt: skip
_COMPARE_COLUMNS = ("sample", "condition", "cell", "organelles")
OME_ZARR_FILES = ("tomogram.ome.zarr", "probabilities.ome.zarr")


def _compare_sheet(path):
    """The compare command's sheet: columns sample, condition, cell, organelles (paths)."""
    from .io import read_table

    sheet = read_table(path)
    missing = [c for c in _COMPARE_COLUMNS if c not in sheet.columns]
    if missing or sheet.empty:
        problem = f"lacks column(s) {', '.join(missing)}" if missing else "has no rows"
        raise InputError(path, f"compare sheet {problem}; needs {', '.join(_COMPARE_COLUMNS)}")
    return sheet


def _file_args(args) -> tuple[list[tuple[str, Path]], list[tuple[str, Path, str]]]:
    """``(inputs, outputs)`` of a parsed command: (argument, path) and (argument, path, kind)."""
    cmd = args.command
    in_names, out_kinds = FILE_ARGS[cmd]
    inputs: list[tuple[str, Path]] = []
    for name in in_names:
        value = getattr(args, name)
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                inputs.append((name, Path(v)))
    outputs = [(n, Path(getattr(args, n)), k) for n, k in out_kinds.items() if getattr(args, n)]
    if cmd == "predict":
        inputs.append(("model card", Path(args.model).with_suffix(".json")))
    if cmd == "train":
        outputs.append(("model card", Path(args.model).with_suffix(".json"), "file"))
    for name in _MRC_OUTPUTS.get(cmd, ()):
        if getattr(args, name):
            path = Path(getattr(args, name))
            outputs.append((f"{name} metadata", path.with_name(path.name + ".json"), "file"))
    if cmd == "mesh":
        outputs += [(f"outdir/{f}", Path(args.outdir) / f, "store" if f == "ply" else "file")
                    for f in MESH_FILES.values()]  # fmt: skip
    if cmd == "export-ome-zarr":
        inputs += [(f"labels {n}", Path(p)) for n, p in _labels(args.labels).items()]
        outputs += [(f"outdir/{f}", Path(args.outdir) / f, "store") for f in OME_ZARR_FILES]
    if cmd == "compare":
        outputs += [(f"outdir/{f}", Path(args.outdir) / f, "file") for f in COMPARE_FILES.values()]
        if Path(args.sheet).is_file():
            sheet = _compare_sheet(args.sheet)
            for column in ("cell", "organelles"):
                inputs += [(f"sheet {column}", Path(str(v))) for v in sheet[column]]
    return inputs, outputs


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def check_paths(args) -> None:
    """Refuse, before any work, output paths that would destroy an input or cannot be written.

    Every output of a command must differ from each of its inputs (also through symlinks and
    hard links) and from its other outputs; a file output must not be an existing directory, a
    directory output not an existing file, and a zarr store output may replace only a zarr
    store (never, say, the results folder it was mistyped for).

    Raises
    ------
    InputError
        Naming the output path, the argument it clashes with and what to do.
    """
    inputs, outputs = _file_args(args)
    cmd = args.command
    for i, (name, out, kind) in enumerate(outputs):
        for in_name, inp in inputs:
            if _same(out, inp):
                raise InputError(
                    out,
                    f"the output ({name}) is also an input ({in_name}) of '{cmd}'; writing it "
                    "would destroy the input: choose another output path",
                )
        for other, path, _ in outputs[:i]:
            if _same(out, path):
                raise InputError(out, f"given as two outputs ({other} and {name}) of '{cmd}'")
        if kind == "file" and out.is_dir():
            raise InputError(out, f"the output ({name}) is an existing directory; give a file name")
        if kind in ("store", "dir") and out.exists() and not out.is_dir():
            raise InputError(
                out, f"the output ({name}) is an existing file; '{cmd}' writes a directory here"
            )
        if kind == "store" and out.is_dir() and any(out.iterdir()) and not _is_store(out):
            raise InputError(
                out,
                f"the output ({name}) is an existing directory that is not a zarr store; "
                "it would be replaced: give a new name (e.g. ending in .zarr)",
            )


def _is_store(path: Path) -> bool:
    """A zarr store (v2 or v3) or a directory of PLY meshes written by ``mesh``."""
    names = {p.name for p in path.iterdir()}
    if names & {"zarr.json", ".zgroup", ".zarray"}:
        return True
    return all(n.endswith(".ply") for n in names)


_CLS_HELP = f"comma-separated class names (default: {','.join(DEFAULTS['classes'])})"


def _labelled(s) -> None:
    """``--classes`` and ``--label-table`` of the commands that read labels."""
    s.add_argument("--classes", type=_class_names, default=None, help=_CLS_HELP)
    s.add_argument(
        "--label-table", default=None, help="label table TSV (default: the bundled table)"
    )


def _add_simulate(sub) -> None:
    """The ``simulate`` subcommand."""
    s = sub.add_parser("simulate", help="simulate a cell with ground truth and its tilt series")
    s.add_argument("projections", help="output Data Exchange HDF5")
    s.add_argument("labels", help="output truth label volume (MRC)")
    s.add_argument("lac", help="output truth LAC volume in 1/um (MRC)")
    s.add_argument("--cell-type", default="yeast", choices=["yeast", "lymphocyte"])
    s.add_argument("--shape", type=_ints, default=tuple(_SIM["shape"]), help="z,y,x voxels")
    s.add_argument("--voxel-nm", type=float, default=_SIM["voxel_nm"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--condition", type=json.loads, default={}, help="JSON, e.g. '{\"lipid_droplets\": 8}'"
    )
    s.add_argument("--n-angles", type=_positive_int, default=_SIM["n_angles"])
    s.add_argument(
        "--tilt-range-deg", type=float, default=_SIM["tilt_range_deg"], help="e.g. 65 for +-65 deg"
    )
    s.add_argument("--photons", type=float, default=_SIM["photons"])
    s.add_argument("--blur-nm", type=float, default=_SIM["blur_nm"])
    s.add_argument("--jitter-px", type=float, default=_SIM["jitter_px"])
    s.add_argument("--energy-ev", type=float, default=_SIM["energy_ev"])


def _add_annotate(sub) -> None:
    """The ``annotate`` subcommand."""
    s = sub.add_parser("annotate", help="virtual annotator: sparse labels from a truth volume")
    s.add_argument("truth")
    s.add_argument("output")
    s.add_argument("--classes", type=_class_names, default=None, help=_CLS_HELP)
    ann = _SIM["annotation"]
    s.add_argument("--slices-per-class", type=_positive_int, default=ann["slices_per_class"])
    s.add_argument("--mode", default=ann["mode"], choices=["scribbles", "slices"])
    s.add_argument(
        "--rim",
        action=argparse.BooleanOptionalAction,
        default=ann["rim"],
        help="trace both sides of each boundary",
    )
    s.add_argument("--seed", type=int, default=0)


def _add_reconstruct(sub) -> None:
    """The ``reconstruct`` subcommand."""
    s = sub.add_parser("reconstruct", help="projections (or a tomogram) -> LAC tomogram in 1/um")
    s.add_argument("raw")
    s.add_argument("tomogram")
    s.add_argument("--qc", default=None, help="QC JSON output")
    s.add_argument("--preview", default=None, help="QC PNG output")
    s.add_argument("--kind", default="projections", choices=["projections", "tomogram"])
    s.add_argument("--voxel-nm", type=float, default=None)
    s.add_argument(
        "--algorithm",
        default=_REC["algorithm"],
        choices=["auto", "fbp", "sirt", "sirt-tv"],
        help="auto: fbp when the tilt covers >= 170 deg (span + one step), else sirt-tv",
    )
    s.add_argument("--filter", default=_REC["filter"])
    s.add_argument(
        "--center", type=_center, default=_REC["center"], help="'auto' or a pixel-centre column"
    )
    s.add_argument(
        "--iterations", type=_positive_int, default=_REC["iterations"], help="sirt / sirt-tv"
    )
    s.add_argument("--tv-weight", type=float, default=_REC["tv_weight"], help="sirt-tv, 1/um")
    s.add_argument("--backend", default=_REC["backend"], choices=["builtin", "astra", "tomopy"])
    s.add_argument(
        "--stripe", action=argparse.BooleanOptionalAction, default=_REC["stripe"],
        help="remove detector stripes (rings)",
    )  # fmt: skip
    s.add_argument(
        "--align", action=argparse.BooleanOptionalAction, default=_REC["align"],
        help="tilt-series alignment",
    )  # fmt: skip
    s.add_argument("--binning", type=_positive_int, default=_REC["binning"])
    s.add_argument(
        "--crop-rows", type=_ints, default=_REC["crop_rows"], help="start,stop detector rows"
    )
    s.add_argument(
        "--crop-cols", type=_ints, default=_REC["crop_cols"], help="start,stop detector columns"
    )
    s.add_argument(
        "--resample-to-nm", type=float, default=_REC["resample_to_nm"],
        help="put the tomogram on a grid of this voxel size (anti-aliased)",
    )  # fmt: skip
    s.add_argument(
        "--energy-ev", type=float, default=_REC["energy_ev"],
        help="photon energy for the LAC plausibility check (the file's wins)",
    )  # fmt: skip


def _add_features(sub) -> None:
    """The ``features`` subcommand."""
    s = sub.add_parser("features", help="multi-scale voxel features into a zarr store")
    s.add_argument("tomogram")
    s.add_argument("output")
    s.add_argument(
        "--sigmas", type=_floats, default=_FEAT["sigmas"], help="scales in voxels, e.g. 0.7,1.6"
    )
    s.add_argument("--families", type=lambda t: t.split(","), default=_FEAT["families"])
    s.add_argument(
        "--family-sigmas",
        type=_family_sigmas,
        default=_FEAT["family_sigmas"],
        help="scales for single families, e.g. 'gaussian=0.7,1.6,3.5,8;ggm=0.7'",
    )
    s.add_argument("--block", type=_block, default=tuple(_FEAT["block"]), help="z,y,x voxels")


def _add_train(sub) -> None:
    """The ``train`` subcommand."""
    s = sub.add_parser("train", help="train the voxel classifier on sparse annotations")
    s.add_argument("--features", nargs="+", required=True)
    s.add_argument("--annotations", nargs="+", required=True)
    s.add_argument("--model", required=True, help="output .skops (card written beside as .json)")
    _labelled(s)
    s.add_argument("--estimator", default=_TRAIN["estimator"], choices=ESTIMATORS)
    s.add_argument("--n-estimators", type=_positive_int, default=_TRAIN["n_estimators"])
    s.add_argument("--max-depth", type=_depth, default=_TRAIN["max_depth"], help="an int or 'none'")
    s.add_argument("--min-samples-leaf", type=_positive_int, default=_TRAIN["min_samples_leaf"])
    s.add_argument("--max-per-class", type=_positive_int, default=_TRAIN["max_per_class"])
    s.add_argument("--class-weight", default=_TRAIN["class_weight"], choices=list(CLASS_WEIGHTS))
    s.add_argument(
        "--min-cv-skill", type=float, default=_TRAIN["min_cv_skill"],
        help="refuse a model whose CV adjusted balanced accuracy is below this (0 = off)",
    )  # fmt: skip
    s.add_argument(
        "--fill-outlines", action=argparse.BooleanOptionalAction,
        default=_TRAIN["fill_outlines"],
        help="fill closed outlines whose inside is unannotated with their class first",
    )  # fmt: skip
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=_positive_int, default=1)


def _add_predict(sub) -> None:
    """The ``predict`` subcommand."""
    s = sub.add_parser("predict", help="segment a tomogram block-wise with a trained model")
    s.add_argument("tomogram")
    s.add_argument("model")
    s.add_argument("labels")
    s.add_argument("--uncertainty", default=None)
    s.add_argument(
        "--block", type=_block, default=tuple(DEFAULTS["predict"]["block"]), help="z,y,x voxels"
    )
    s.add_argument(
        "--coarse",
        type=lambda t: None if t.lower() in ("none", "null") else _positive_int(t),
        default=DEFAULTS["predict"]["coarse"],
        help="coarse-to-fine lattice spacing (voxels), or 'none' for every voxel",
    )
    s.add_argument(
        "--exact-probabilities",
        action="store_true",
        default=DEFAULTS["predict"]["exact_probabilities"],
        help="every tree for every voxel (default: a voxel leaves the forest once its label "
        "is decided; same labels, its probabilities from the trees evaluated)",
    )
    s.add_argument("--threads", type=_positive_int, default=1)


def _add_evaluate(sub) -> None:
    """The ``evaluate`` subcommand."""
    s = sub.add_parser("evaluate", help="Dice/IoU per class against a truth label volume")
    s.add_argument("labels")
    s.add_argument("truth")
    s.add_argument("output")
    _labelled(s)
    s.add_argument("--sample", default="sample")
    s.add_argument(
        "--ignore", type=lambda t: [int(v) for v in t.split(",")],
        default=DEFAULTS["evaluate"]["ignore"], help="truth values not scored, e.g. 255",
    )  # fmt: skip


def _add_mesh(sub) -> None:
    """The ``mesh`` subcommand."""
    s = sub.add_parser("mesh", help="GLB scene, PLY per class, 3D render and slice panel")
    s.add_argument("labels")
    s.add_argument("tomogram")
    s.add_argument("outdir")
    _labelled(s)
    s.add_argument("--smooth-iterations", type=int, default=DEFAULTS["mesh"]["smooth_iterations"])


def _add_measure(sub) -> None:
    """The ``measure`` subcommand."""
    s = sub.add_parser("measure", help="per-object and per-cell tables")
    s.add_argument("labels")
    s.add_argument("tomogram")
    s.add_argument("organelles")
    s.add_argument("cell")
    _labelled(s)
    s.add_argument("--min-volume-um3", type=float, default=DEFAULTS["measure"]["min_volume_um3"])


def _add_compare(sub) -> None:
    """The ``compare`` subcommand."""
    s = sub.add_parser("compare", help="compare conditions from per-cell and per-object tables")
    s.add_argument(
        "sheet", help="TSV with columns sample, condition, cell (path), organelles (path)"
    )
    s.add_argument("outdir")
    s.add_argument(
        "--reference", default=DEFAULTS["compare"]["reference"],
        help="the control condition (default: the only condition)",
    )  # fmt: skip
    _labelled(s)
    s.add_argument("--alpha", type=float, default=DEFAULTS["compare"]["alpha"])
    s.add_argument("--n-boot", type=int, default=DEFAULTS["compare"]["n_boot"])
    s.add_argument("--seed", type=int, default=0)


def _add_export_ome_zarr(sub) -> None:
    """The ``export-ome-zarr`` subcommand."""
    s = sub.add_parser("export-ome-zarr", help="tomogram, labels, probabilities -> OME-Zarr (NGFF)")
    s.add_argument("tomogram")
    s.add_argument("outdir", help="gets tomogram.ome.zarr (+ labels/) and probabilities.ome.zarr")
    s.add_argument("--labels", action="append", default=[], metavar="[NAME=]PATH")
    s.add_argument("--probabilities", default=None, help="predict's probabilities.zarr")
    s.add_argument("--levels", default="auto", help="pyramid levels, or 'auto'")
    s.add_argument("--chunks", type=_ints, default=(64, 128, 128), help="z,y,x voxels")
    s.add_argument(
        "--label-table", default=None, help="label table TSV (default: the bundled table)"
    )


def _add_napari(sub) -> None:
    """The ``napari`` subcommand."""
    s = sub.add_parser("napari", help="paint, save, train and preview a sample in napari")
    s.add_argument("sample", nargs="?", help="sample id (default: pick in the widget)")
    s.add_argument("--configfile", default="config/config.yaml")
    s.add_argument("--samples", default=None, help="sample sheet instead of the config's")


#: one function per subcommand, in the order ``sxtflow --help`` lists them
_SUBCOMMANDS = (
    _add_simulate,
    _add_annotate,
    _add_reconstruct,
    _add_features,
    _add_train,
    _add_predict,
    _add_evaluate,
    _add_mesh,
    _add_measure,
    _add_compare,
    _add_export_ome_zarr,
    _add_napari,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``sxtflow`` argument parser: one subcommand per stage (:data:`_SUBCOMMANDS`)."""
    p = argparse.ArgumentParser(prog="sxtflow", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"sxtflow {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return p


def _run(args) -> None:
    cmd = args.command
    if cmd == "simulate":
        stages.run_simulate(
            args.projections, args.labels, args.lac, cell_type=args.cell_type, shape=args.shape,
            voxel_nm=args.voxel_nm, seed=args.seed, condition=args.condition,
            n_angles=args.n_angles, tilt_range_deg=args.tilt_range_deg, photons=args.photons,
            blur_nm=args.blur_nm, jitter_px=args.jitter_px, energy_ev=args.energy_ev,
        )  # fmt: skip
    elif cmd == "annotate":
        stages.run_annotate(
            args.truth, args.output, classes=list(args.classes),
            slices_per_class=args.slices_per_class, mode=args.mode, rim=args.rim,
            seed=args.seed,
        )  # fmt: skip
    elif cmd == "reconstruct":
        stages.run_reconstruct(
            args.raw, args.tomogram, args.qc, args.preview, kind=args.kind,
            voxel_nm=args.voxel_nm, algorithm=args.algorithm, filter=args.filter,
            center=args.center, iterations=args.iterations, backend=args.backend,
            tv_weight=args.tv_weight, stripe=args.stripe, align=args.align,
            binning=args.binning, crop_rows=args.crop_rows, crop_cols=args.crop_cols,
            resample_to_nm=args.resample_to_nm, energy_ev=args.energy_ev,
        )  # fmt: skip
    elif cmd == "features":
        stages.run_features(
            args.tomogram, args.output, sigmas=args.sigmas, families=args.families,
            family_sigmas=args.family_sigmas, block=args.block,
        )  # fmt: skip
    elif cmd == "train":
        stages.run_train(
            args.features, args.annotations, args.model, classes=args.classes,
            labels=args.label_table, estimator=args.estimator, n_estimators=args.n_estimators,
            max_depth=args.max_depth, min_samples_leaf=args.min_samples_leaf,
            max_per_class=args.max_per_class, seed=args.seed,
            class_weight=args.class_weight, min_cv_skill=args.min_cv_skill,
            fill_outlines=args.fill_outlines, threads=args.threads,
        )  # fmt: skip
    elif cmd == "predict":
        stages.run_predict(
            args.tomogram, args.model, args.labels, args.uncertainty, block=args.block,
            threads=args.threads, coarse=args.coarse,
            exact_probabilities=args.exact_probabilities,
        )  # fmt: skip
    elif cmd == "evaluate":
        stages.run_evaluate(
            args.labels, args.truth, args.output, classes=args.classes, sample=args.sample,
            labels=args.label_table, ignore=args.ignore,
        )  # fmt: skip
    elif cmd == "mesh":
        out = {k: Path(args.outdir) / v for k, v in MESH_FILES.items()}
        stages.run_mesh(
            args.labels, args.tomogram, out["scene"], out["ply"], out["render"],
            out["slices"], classes=args.classes, labels=args.label_table,
            smooth_iterations=args.smooth_iterations,
        )  # fmt: skip
    elif cmd == "measure":
        stages.run_measure(
            args.labels, args.tomogram, args.organelles, args.cell,
            classes=args.classes, min_volume_um3=args.min_volume_um3,
        )  # fmt: skip
    elif cmd == "compare":
        sheet = _compare_sheet(args.sheet)
        out = Path(args.outdir)
        stages.run_compare(
            list(sheet["cell"]), list(sheet["organelles"]),
            sheet[["sample", "condition"]].to_dict("records"),
            **{k: out / v for k, v in COMPARE_FILES.items()},
            classes=args.classes, reference=args.reference, alpha=args.alpha,
            n_boot=args.n_boot, seed=args.seed,
        )  # fmt: skip
    elif cmd == "export-ome-zarr":
        levels = args.levels if args.levels == "auto" else int(args.levels)
        stages.run_export_ome_zarr(
            args.tomogram, args.outdir, labels=_labels(args.labels),
            probabilities=args.probabilities, levels=levels, chunks=args.chunks,
            label_table=args.label_table,
        )  # fmt: skip
    elif cmd == "napari":
        try:
            from .napari import launch
        except ImportError as exc:
            raise ValueError(f"{exc}; install the extra: pip install -e '.[napari]'") from exc
        launch(args.sample, configfile=args.configfile, samples=args.samples)


def _labels(items: list[str]) -> dict[str, str]:
    """``["segmentation=labels.mrc", "ann.mrc"]`` → names (default: the file's stem) → paths."""
    from pathlib import Path

    pairs = [i.split("=", 1) if "=" in i else (Path(i).name.split(".")[0], i) for i in items]
    return {name: path for name, path in pairs}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to(None)
    try:
        _resolve_classes(args, parser)
        check_paths(args)
        _run(args)
    except (InputError, KeyError, ValueError) as exc:
        parser.exit(2, f"sxtflow: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
