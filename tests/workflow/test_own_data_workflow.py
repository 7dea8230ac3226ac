"""Issue 12, end to end: the workflow on a user's own tomograms and classes, with no config but
`samples`, `classes` and `compare.reference` (marked ``workflow``; 32³ volumes, seconds a job).

(a) unitless AmiraMesh tomograms + the sheet's voxel_nm, classes [ice, cytoplasm], one
    condition, run from another directory with only `--config` → results/report.html;
(b) an own resources/labels.tsv with a class the bundled table lacks, two conditions;
(c) a model trained at one voxel size refused on a tomogram of another.
"""

import json
import shlex

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from _snakemake import ROOT, planned_jobs, snakemake
from scipy import ndimage

from sxtflow.io import Volume, write_volume
from sxtflow.labels import default_labels
from sxtflow.plan import cell_columns

pytestmark = pytest.mark.workflow

N = 32
HEADER = "sample\tcondition\tkind\tinput\tcell_type\tvoxel_nm\tannotation\ttruth\n"
GRANULE = 12  # a class of the lab's own table, not in the bundled one
LAC = {1: 0.10, 2: 0.30, 4: 0.26, GRANULE: 0.75}  # µm⁻¹ at ~517 eV: ice, cytoplasm, nucleus


def phantom(seed, granules=0):
    """A cell (cytoplasm with a nucleus) in ice, with ``granules`` dense balls; fine labels of
    the bundled table (+ 12 = granule) and the LAC in µm⁻¹, blurred and noisy."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:N, :N, :N] - (N - 1) / 2
    r = np.sqrt(z**2 + (y / 1.1) ** 2 + x**2)
    labels = np.where(r < 11 + rng.uniform(-1, 1), 2, 1).astype(np.uint8)
    labels[np.sqrt((z - 1) ** 2 + y**2 + (x + 2) ** 2) < 4.5] = 4
    centres = [(-5, -6, 5), (5, 6, -4), (0, 7, 6), (-5, 4, -6), (5, -6, 3)]
    for cz, cy, cx in centres[:granules]:
        labels[np.sqrt((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) < 2.6] = GRANULE
    lac = np.vectorize(LAC.get)(labels).astype(np.float32)
    lac = ndimage.gaussian_filter(lac, 0.7) + rng.normal(0, 0.02, lac.shape)
    return labels, lac.astype(np.float32)


def scribbles(labels):
    """Strokes on three z-slices through the granules, every second row (as painted in napari)."""
    ann = np.zeros_like(labels)
    for zz in (11, 16, 21):
        ann[zz, ::2] = labels[zz, ::2]
    return ann


def amira_unitless(path, data):
    """AmiraMesh as AREC3D/Amira write it for a capillary tomogram: a BoundingBox, no Units."""
    nz, ny, nx = data.shape
    kind, raw = ("byte Labels", data.astype(np.uint8)) if data.dtype == np.uint8 else (
        "float Data", data.astype("<f4"))  # fmt: skip
    head = (
        f"# AmiraMesh BINARY-LITTLE-ENDIAN 2.1\n\ndefine Lattice {nx} {ny} {nz}\n\n"
        f"Parameters {{\n    BoundingBox 0 {nx - 1} 0 {ny - 1} 0 {nz - 1},\n"
        f'    CoordType "uniform"\n}}\n\nLattice {{ {kind} }} @1\n\n# Data section follows\n@1\n'
    )
    path.write_bytes(head.encode() + raw.tobytes() + b"\n")


def sheet(rows):
    return HEADER + "".join("\t".join(r) + "\n" for r in rows)


# --------------------------------------------------------------------------- (a)


@pytest.fixture(scope="module")
def capillary(tmp_path_factory):
    """Two unitless AmiraMesh tomograms of one condition, one annotated, one with a truth;
    run from its own directory with only --config samples=… classes=[ice,cytoplasm]."""
    work = tmp_path_factory.mktemp("capillary")
    for i, name in enumerate(("cell1", "cell2")):
        labels, lac = phantom(seed=i)
        amira_unitless(work / f"{name}.rec", lac)
        if i == 0:  # painted in napari, saved as TIFF: nucleus (4) counts as cytoplasm here
            tifffile.imwrite(work / "cell1_labels.tif", scribbles(labels), photometric="minisblack")
        else:
            amira_unitless(work / f"{name}_truth.labels", labels)
    (work / "samples.tsv").write_text(
        sheet(
            [
                ("cell1", "capillary", "tomogram", "cell1.rec", "", "40", "cell1_labels.tif", ""),
                ("cell2", "capillary", "tomogram", "cell2.rec", "", "40", "", "cell2_truth.labels"),
            ]
        )
    )
    cli = readme_config()
    snakemake(work, *cli, config=None)
    snakemake(work, *cli, "--report", "results/report.html", config=None)
    return work


def readme_config():
    """The ``--config`` arguments of the README's "Your own data" run (so it stays true)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Your own data") : text.index("## On a cluster")]
    line = next(ln for ln in section.splitlines() if ln.startswith(".venv/bin/snakemake -s"))
    words = shlex.split(line)
    assert words[words.index("-d") + 1] == "mydir"
    return tuple(words[words.index("--config") :])


def test_capillary_runs_to_the_report_with_only_samples_and_classes(capillary):
    # errors 1-8 of the issue: -d without a config file, the demo's reference, classes,
    # measure.separate, compare.measures, one condition, a cell-only class set, the report
    html = (capillary / "results/report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "tests.tsv" in html and "summary.tsv" in html
    assert not (capillary / "results/compare/fractions.png").exists()  # no organelle class
    tests = pd.read_csv(capillary / "results/compare/tests.tsv", sep="\t")
    primary = tests[tests["family"] == "primary"]
    assert primary["measure"].tolist() == [
        "cell_volume_um3", "cell_surface_um2", "cell_sphericity", "cell_lac_mean_per_um",
    ]  # fmt: skip
    assert tests["p_value"].isna().all()
    assert (tests["note"].str.startswith("one condition (capillary): nothing to compare")).all()
    summary = pd.read_csv(capillary / "results/compare/summary.tsv", sep="\t")
    assert set(summary["condition"]) == {"capillary"}


def test_capillary_units_come_from_the_sheet_and_values_are_plausible(capillary):
    qc = json.loads((capillary / "results/cell1/qc/reconstruction.json").read_text())
    assert qc["voxel_nm"] == [40.0, 40.0, 40.0] and qc["voxel_source"] == "sample sheet"
    assert qc["amira_bbox_unitless"] == [1.0, 1.0, 1.0]
    assert qc["qc_warnings"] == [] and 0.08 < qc["ice_lac_per_um"] < 0.12
    card = json.loads((capillary / "results/model/classifier.json").read_text())
    assert card["voxel_nm"] == [40.0] * 3 and card["classes"] == {"ice": 1, "cytoplasm": 2}
    cell = pd.read_csv(capillary / "results/cell2/cell.tsv", sep="\t")
    assert len(cell.columns) == len(set(cell.columns))
    assert 0.9 < cell["cytoplasm_fraction"].iloc[0] <= 1.0
    # a ball of radius ~11 voxels of 40 nm: ~4/3 π (0.44 µm)³ · 1.1 ≈ 0.39 µm³
    assert 0.3 < cell["cell_volume_um3"].iloc[0] < 0.5
    ev = pd.read_csv(capillary / "results/evaluation.tsv", sep="\t").set_index("class")
    assert ev.loc["cell", "dice"] > 0.9  # the truth's nucleus (4) is scored as cytoplasm


# --------------------------------------------------------------------------- (b)


@pytest.fixture(scope="module")
def granules(tmp_path_factory):
    """Own label table with `granule`; two conditions of 2 cells (5 granules in `drug`, 2 in
    `ctrl`), one annotated."""
    work = tmp_path_factory.mktemp("granules")
    (work / "resources").mkdir()
    table = default_labels().to_records() + [
        {"value": GRANULE, "name": "granule", "segment_as": "", "parent": "cell",
         "colour": "#00a000"},
    ]  # fmt: skip
    (work / "resources/labels.tsv").write_text(pd.DataFrame(table).to_csv(sep="\t", index=False))
    rows = []
    for i, (cond, n) in enumerate((("ctrl", 2), ("ctrl", 2), ("drug", 5), ("drug", 5))):
        labels, lac = phantom(seed=10 + i, granules=n)
        # 60 nm voxels (in the MRC header): a granule of ~80 voxels is 0.017 µm³, above the
        # default debris size measure.min_volume_um3 = 0.005 µm³
        write_volume(work / f"t{i}.mrc", Volume(lac, 60.0))
        ann = ""
        if i == 0:
            write_volume(work / f"a{i}.mrc", Volume(scribbles(labels), 60.0))
            ann = f"a{i}.mrc"
        rows.append((f"{cond}{i}", cond, "tomogram", f"t{i}.mrc", "", "", ann, ""))
    (work / "samples.tsv").write_text(sheet(rows))
    config = {
        "samples": "samples.tsv",
        "classes": ["ice", "cytoplasm", "granule"],
        "compare": {"reference": "ctrl"},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(work)
    snakemake(work, "--report", "results/report.html")
    return work


def test_own_class_is_segmented_measured_and_compared(granules):
    assert (granules / "results/report.html").stat().st_size > 100_000
    card = json.loads((granules / "results/model/classifier.json").read_text())
    assert card["classes"] == {"ice": 1, "cytoplasm": 2, "granule": GRANULE}
    assert card["label_table"]["source"] == "resources/labels.tsv"
    assert {"value": GRANULE, "name": "granule"}.items() <= card["label_table"]["labels"][
        -1
    ].items()
    cells = pd.read_csv(granules / "results/compare/cells.tsv", sep="\t").set_index("sample")
    assert set(cell_columns(card["classes"])) <= set(cells.columns)
    assert (cells.filter(like="_fraction") <= 1).all().all()
    # 2 vs 5 granules of ~80 voxels (radius 2.6): the segmentation finds them
    assert cells.loc[["ctrl0", "ctrl1"], "granule_count"].tolist() == [2, 2]
    assert cells.loc[["drug2", "drug3"], "granule_count"].tolist() == [5, 5]
    tests = pd.read_csv(granules / "results/compare/tests.tsv", sep="\t")
    primary = tests[tests["family"] == "primary"].set_index("measure")
    assert list(primary.index) == ["cell_volume_um3", "granule_fraction", "granule_count"]
    assert primary.loc["granule_count", "median_difference"] == 3
    assert (granules / "results/compare/fractions.png").exists()
    assert not (granules / "results/compare/chromatin_profiles.png").exists()  # no nucleus


def test_editing_the_label_table_reruns_its_readers(granules):
    table = granules / "resources/labels.tsv"
    text = table.read_text()
    table.write_text(text.replace("#00a000", "#00b000"))
    try:
        counts = planned_jobs(granules)
    finally:
        table.write_text(text)
    # the table is an input of train (and so of everything after), mesh and evaluate
    assert counts["train"] == 1 and counts["mesh"] == 4 and counts["compare"] == 1


# --------------------------------------------------------------------------- (c)


def test_model_of_one_voxel_size_is_refused_on_a_tomogram_of_another(tmp_path):
    labels, lac = phantom(seed=3)
    amira_unitless(tmp_path / "t.rec", lac)
    amira_unitless(tmp_path / "t.labels", scribbles(labels))
    (tmp_path / "samples.tsv").write_text(
        sheet(
            [
                ("coarse", "wt", "tomogram", "t.rec", "", "40", "t.labels", ""),
                ("fine", "wt", "tomogram", "t.rec", "", "20", "", ""),
            ]
        )
    )
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"samples": "samples.tsv", "classes": ["ice", "cytoplasm"]})
    )
    proc = snakemake(tmp_path, "results/fine/prediction.mrc", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs/predict/fine.log").read_text()
    assert (
        "voxel size 20 nm differs by 50 % (more than 5 %) from the 40 nm the model "
        "results/model/classifier.skops was trained at" in log
    )
    assert "reconstruct.resample_to_nm: 40" in log and "retrain with annotations at 20 nm" in log
    assert "Traceback" not in log  # one named line, as on the command line
    assert not (tmp_path / "results/fine/prediction.mrc").exists()


def test_names_in_no_table_fail_before_any_job(tmp_path):
    (tmp_path / "samples.tsv").write_text(
        sheet([("a", "wt", "simulate", "", "yeast", "", "auto", "")])
    )
    config = {
        "samples": "samples.tsv",
        "refine": {"nucleous": {"max_objects": 1}},
        "measure": {"separate": {"lipid_droplets": 0.1}},
        "compare": {"measures": ["nucleus_fractoin"]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "-n", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "refine: 'nucleous' is in no label table (bundled)" in text
    assert "measure.separate: 'lipid_droplets' is in no label table" in text
    assert "compare.measures: 'nucleus_fractoin' is not a per-cell column" in text
    assert not (tmp_path / "results").exists()
