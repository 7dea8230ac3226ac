"""A tiny annotation project for the annotation-loop tests (tests/unit/test_annotation.py, tests/unit/test_napari.py).

Two simulated yeast cells given as tomograms (LAC µm⁻¹ blurred, with noise, in the
reconstruction's cylindrical field of view): ``s1`` annotated by the virtual annotator,
``s2`` not annotated yet, with the pipeline's prediction, uncertainty and annotation
suggestions made from a model trained on ``s1`` (as after a first ``snakemake`` run).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from scipy import ndimage as ndi

from sxtflow import io, sim, stages
from sxtflow.annotation import AnnotationProject
from sxtflow.io import Volume

CLASSES = ["ice", "cytoplasm", "nucleus", "vacuole"]
SHAPE = (40, 48, 48)
VOXEL_NM = 100.0
CONFIG = {
    "samples": "samples.tsv",
    "seed": 5,
    "classes": CLASSES,
    "features": {
        "sigmas": [0.7, 1.6],
        "families": ["gaussian", "ggm", "hessian"],
        "block": [16, 32, 32],
    },
    "train": {
        "estimator": "random_forest",
        "n_estimators": 12,
        "max_depth": 12,
        "min_samples_leaf": 2,
        "max_per_class": 5000,
        "class_weight": "sqrt_balanced",
    },
    # blocks smaller than the volume, so previews cross block borders
    "predict": {"block": [8, 32, 32]},
}
SHEET = (
    "# tiny annotation project\n"
    "sample\tcondition\tkind\tinput\tvoxel_nm\tannotation\n"
    "s1\twt\ttomogram\tdata/s1.mrc\t\tdata/s1_annotation.mrc\n"
    "s2\twt\ttomogram\tdata/s2.mrc\t\t\n"
)


def cell(seed: int) -> tuple[Volume, np.ndarray]:
    """A simulated tomogram (blurred LAC + noise, µm⁻¹) and its truth in segmentation classes."""
    from sxtflow.labels import default_labels

    lac, fine = sim.simulate_cell("yeast", SHAPE, VOXEL_NM, seed=seed)
    rng = np.random.default_rng(seed)
    data = ndi.gaussian_filter(lac.data, 0.8) + rng.normal(0, 0.02, SHAPE)
    meta = {"unit": "1/um", "field_of_view": "cylinder"}
    truth = default_labels().to_classes(fine.data, CLASSES)
    return Volume(data.astype(np.float32), lac.voxel_nm, meta), truth, fine


def make_project(root: Path) -> tuple[AnnotationProject, dict]:
    """Write the project under ``root``; returns it and the truth of each sample."""
    root = Path(root)
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    (root / "samples.tsv").write_text(SHEET)
    truths = {}
    for i, s in enumerate(("s1", "s2")):
        vol, truth, fine = cell(seed=11 + i)
        io.write_volume(root / "data" / f"{s}.mrc", vol)
        io.write_volume(root / "results" / s / "tomogram.mrc", vol)
        truths[s] = truth
        if s == "s1":
            ann = sim.annotate(fine, CLASSES, slices_per_class=2, seed=3, rim=True)
            io.write_volume(root / "data" / "s1_annotation.mrc", ann)
    project = AnnotationProject.from_configfile("config/config.yaml", workdir=root)
    project.train(["s1"], out_model="results/model/classifier.skops")
    res = root / "results" / "s2"
    stages.run_predict(
        res / "tomogram.mrc",
        root / "results/model/classifier.skops",
        res / "prediction.mrc",
        res / "uncertainty.mrc",
        out_suggestions=res / "annotation_suggestions.json",
        block=CONFIG["predict"]["block"],
    )
    return project, truths
