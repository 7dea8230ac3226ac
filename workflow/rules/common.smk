import json
import zlib
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

# The library in src/ is importable here; rule scripts import it through scripts/_paths.py.
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

from sxtflow.labels import load_labels, locate_labels  # noqa: E402
from sxtflow.options import with_defaults  # noqa: E402
from sxtflow.plan import plan_config  # noqa: E402
from sxtflow.samples import load_sample_sheet, sheet_as_text  # noqa: E402

# Every key the config leaves out comes from sxtflow.options (the one place defaults live);
# the schema then checks types and ranges of the whole config.
validate(with_defaults(config), schema="../schemas/config.schema.yaml")

samples = load_sample_sheet(config["samples"], base_dir=".")
# load_sample_sheet already checks every row (with row/column messages); the schema check
# below costs ~0.4 ms per row, so cluster jobs, which re-read the Snakefile, skip it.
if workflow.is_main_process:
    validate(sheet_as_text(samples), schema="../schemas/samples.schema.yaml")

# The label table (config `labels`, else resources/labels.tsv, else the bundled one) and the
# class set: per-class entries of other classes are dropped with one warning, names in no
# table are errors, here, before any job runs.
LABEL_TABLE = locate_labels(config.get("labels"), ".")
LABELS = load_labels(LABEL_TABLE)
PLAN = plan_config(config, LABELS, samples["condition"])
config.clear()
config.update(PLAN.config)
if workflow.is_main_process:
    for line in PLAN.warnings:
        logger.warning(f"sxtflow: {line}")
CLASSES = PLAN.classes
if not (samples["annotation"] != "").any():
    raise ValueError(
        f"{config['samples']}: no sample has an annotation; training needs at least one "
        "(a sparse label volume, or 'auto' for simulated samples)"
    )


wildcard_constraints:
    sample="[A-Za-z0-9][A-Za-z0-9_.-]*",


def rule_threads(rule):
    """Threads of the rule's jobs (config `threads`; Snakemake caps them at --cores)."""
    return config["threads"][rule]


def canonical(value):
    """A config value with its mappings' keys sorted: params compare equal whatever the
    key order in the config file, so reordering keys reruns nothing."""
    return json.loads(json.dumps(value, sort_keys=True))


def simulation_options():
    """The simulate section without the per-condition and annotation settings (those are
    passed separately, so changing one condition reruns only its cells)."""
    skip = ("conditions", "annotation")
    return canonical({k: v for k, v in config["simulate"].items() if k not in skip})


def sample_seed(sample, stream=0):
    """Seed of one sample's random step: stable when rows are added or reordered."""
    return zlib.crc32(f"{config['seed']}:{stream}:{sample}".encode())


def sample_row(wildcards):
    return samples.loc[wildcards.sample]


def get_cell_type(wildcards):
    """The simulated cell type of a sample (simulate rule)."""
    return sample_row(wildcards)["cell_type"]


def get_condition_options(wildcards):
    """The simulate.conditions entry of a sample's condition ({} when it has none)."""
    conditions = config["simulate"]["conditions"]
    return canonical(conditions.get(sample_row(wildcards)["condition"], {}))


def get_simulate_seed(wildcards):
    return sample_seed(wildcards.sample, "simulate")


def get_annotate_seed(wildcards):
    return sample_seed(wildcards.sample, "annotate")


def get_kind(wildcards):
    """What the sheet's input is: simulate, projections or tomogram."""
    return sample_row(wildcards)["kind"]


def get_voxel_nm(wildcards):
    """The sheet's voxel size in nm (NaN when the file's header gives it)."""
    return float(sample_row(wildcards)["voxel_nm"])


def get_truth(wildcards):
    """Input of the evaluate rule: the sample's ground truth."""
    return truth_path(wildcards.sample)


def is_annotated(wildcards):
    """True when the sample was annotated (its evaluation is not independent of training)."""
    return wildcards.sample in ANNOTATED


def get_sample_conditions(wildcards):
    """The sheet's sample and condition columns, one record per sample (compare rule)."""
    return samples[["sample", "condition"]].to_dict("records")


def get_raw(wildcards):
    """Input of the reconstruct rule: simulated projections, raw projections or a tomogram."""
    row = sample_row(wildcards)
    if row["kind"] == "simulate":
        return f"results/{wildcards.sample}/raw/projections.h5"
    return row["input"]


def annotation_path(sample):
    value = samples.loc[sample, "annotation"]
    return f"results/{sample}/annotation.mrc" if value == "auto" else value


def truth_path(sample):
    row = samples.loc[sample]
    if row["kind"] == "simulate":
        return f"results/{sample}/truth/labels.mrc"
    return row["truth"]


ANNOTATED = samples.index[samples["annotation"] != ""].tolist()
# simulated samples use the simulator's truth; others the sheet's truth column
WITH_TRUTH = samples.index[
    (samples["kind"] == "simulate") | (samples["truth"] != "")
].tolist()


def get_training_inputs(wildcards):
    return {
        "features": [f"results/{s}/features.zarr" for s in ANNOTATED],
        "annotations": [annotation_path(s) for s in ANNOTATED],
        "tomograms": [f"results/{s}/tomogram.mrc" for s in ANNOTATED],
        **label_table_input(wildcards),
    }


def label_table_input(wildcards):
    """The label table as an input (editing it reruns its readers), unless it is the bundled one."""
    return {"label_table": str(LABEL_TABLE)} if LABEL_TABLE else {}


def compare_outputs():
    """Outputs of the compare rule: plots that need an organelle class (fractions) or a
    nucleus (chromatin profiles) only when the class set has one, so the report holds a
    section for every figure it can draw and no empty one."""
    out = {
        "cells": "results/compare/cells.tsv",
        "objects": "results/compare/organelles.tsv",
        "summary": report(
            "results/compare/summary.tsv",
            caption="../report/summary.rst",
            category="4. Statistics",
            labels={"figure": "per-condition summary"},
        ),
        "tests": report(
            "results/compare/tests.tsv",
            caption="../report/tests.rst",
            category="4. Statistics",
            labels={"figure": "tests between conditions"},
        ),
        "measures": report(
            "results/compare/measures.png",
            caption="../report/measures.rst",
            category="4. Statistics",
            labels={"figure": "measures per condition"},
        ),
        "measures_svg": "results/compare/measures.svg",
        "lac": report(
            "results/compare/lac_histograms.png",
            caption="../report/lac_histograms.rst",
            category="4. Statistics",
            labels={"figure": "LAC histograms"},
        ),
        "lac_svg": "results/compare/lac_histograms.svg",
    }
    if PLAN.steps["fractions"]:
        out["fractions"] = report(
            "results/compare/fractions.png",
            caption="../report/fractions.rst",
            category="4. Statistics",
            labels={"figure": "volume fractions"},
        )
        out["fractions_svg"] = "results/compare/fractions.svg"
    if PLAN.steps["chromatin"]:
        out["chromatin"] = report(
            "results/compare/chromatin_profiles.png",
            caption="../report/chromatin_profiles.rst",
            category="4. Statistics",
            labels={"figure": "chromatin radial profiles"},
        )
        out["chromatin_svg"] = "results/compare/chromatin_profiles.svg"
    return out


def get_compare_inputs(wildcards):
    out = {
        "cells": [f"results/{s}/cell.tsv" for s in samples.index],
        "organelles": [f"results/{s}/organelles.tsv" for s in samples.index],
    }
    if PLAN.steps["chromatin"]:
        out["chromatin"] = [f"results/{s}/chromatin_profile.tsv" for s in samples.index]
    return out


def get_final_output(wildcards):
    """Targets of the `all` target; an input function, evaluated only when planning, not each
    time a cluster job re-reads the Snakefile."""
    out = [
        "results/model/classifier.skops",
        "results/compare/tests.tsv",
        "results/compare/summary.tsv",
        "results/compare/measures.png",
    ]
    if PLAN.steps["fractions"]:
        out.append("results/compare/fractions.png")
    for s in samples.index:
        out += [
            f"results/{s}/organelles.tsv",
            f"results/{s}/cell.tsv",
            # rule chromatin's (empty tables without a nucleus class, as ever)
            f"results/{s}/chromatin.tsv",
            f"results/{s}/meshes/scene.glb",
            f"results/{s}/render.png",
            f"results/{s}/slices.png",
        ]
    if WITH_TRUTH:
        out.append("results/evaluation.tsv")
    if config["export"]["ome_zarr"]:
        out += [f"results/{s}/ome-zarr" for s in samples.index]
    return out


def export_options():
    """The export section without the on/off switch (defaults filled from sxtflow.options)."""
    return {k: v for k, v in config["export"].items() if k != "ome_zarr"}


def get_export_inputs(wildcards):
    """The tomogram, final labels, probabilities, (if any) the sample's annotation and the
    lab's label table (names and colours of the label images)."""
    s = wildcards.sample
    out = {
        **label_table_input(wildcards),
        "tomogram": f"results/{s}/tomogram.mrc",
        "labels": f"results/{s}/labels.mrc",
        "probabilities": f"results/{s}/probabilities.zarr",
    }
    if s in ANNOTATED:
        out["annotation"] = annotation_path(s)
    return out


def per_sample(pattern, subset=None):
    """Input function: ``pattern`` for every sample (or ``subset``), built when planning."""

    def every_sample(wildcards):
        return [
            pattern.format(sample=s)
            for s in (samples.index if subset is None else subset)
        ]

    return every_sample
