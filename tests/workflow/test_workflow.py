"""End-to-end runs of the Snakemake workflow on tiny simulated data (marked ``workflow``)."""

import json

import pandas as pd
import pytest
from _snakemake import DATA, make_workdir, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("tiny"))
    snakemake(work)
    return work


def test_segmentation_matches_truth(finished_run):
    ev = pd.read_csv(finished_run / "results/evaluation.tsv", sep="\t")
    unseen = ev[~ev["annotated"]].set_index("class")
    assert set(ev["sample"]) == {"c1", "l1"}
    for cls in ("cell", "nucleus", "vacuole"):
        assert unseen.loc[cls, "dice"] >= 0.8, ev.to_string()


def test_tables_have_units_and_plausible_values(finished_run):
    cell = pd.read_csv(finished_run / "results/c1/cell.tsv", sep="\t")
    objects = pd.read_csv(finished_run / "results/c1/organelles.tsv", sep="\t")
    assert {"volume_um3", "surface_um2", "sphericity", "lac_mean_per_um"} <= set(objects.columns)
    # the cell's volume agrees with the simulator's truth (every non-ice label)
    truth = json.loads((finished_run / "results/c1/truth/labels.mrc.json").read_text())
    true_cell = sum(v for k, v in truth["truth"]["volume_um3"].items() if k != "ice")
    assert cell["cell_volume_um3"].iloc[0] == pytest.approx(true_cell, rel=0.05)
    assert 20 < true_cell < 90  # a yeast cell of ~4-5 µm diameter
    main = objects[objects["class"] == "nucleus"].nlargest(1, "volume_um3").iloc[0]
    assert 0.6 < main["sphericity"] <= 1.0
    assert (objects["volume_um3"] > 0).all() and (objects["surface_um2"] > 0).all()


def test_model_card_and_report_outputs(finished_run):
    card = json.loads((finished_run / "results/model/classifier.json").read_text())
    assert set(card["classes"]) == {
        "ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"
    }  # fmt: skip
    assert 0.5 < card["cv"]["balanced_accuracy"] <= 1.0
    # the config's per-family scales and leaf size reach the model (and prediction used it)
    assert card["feature_spec"]["family_sigmas"] == {"ggm": [0.7, 1.6, 3.5]}
    assert "ggm_s1" not in card["feature_names"] and "gaussian_s1" in card["feature_names"]
    assert card["min_samples_leaf"] == 2
    import trimesh

    scene = trimesh.load(finished_run / "results/c1/meshes/scene.glb")
    assert "nucleus" in scene.geometry
    tests = pd.read_csv(finished_run / "results/compare/tests.tsv", sep="\t")
    assert {"measure", "p_value", "q_value"} <= set(tests.columns)
    snakemake(finished_run, "--report", "results/report.html")
    html = (finished_run / "results/report.html").read_text(errors="replace")
    assert "classifier.json" in html and len(html) > 100_000


def test_adding_a_sample_reruns_only_it(finished_run):
    sheet = (finished_run / "samples.tsv").read_text()
    (finished_run / "samples.tsv").write_text(sheet + "c2\tcontrol\tsimulate\t\tyeast\t\t\t\n")
    try:
        out = snakemake(finished_run, "-n", "--quiet", "rules").stdout
    finally:
        (finished_run / "samples.tsv").write_text(sheet)
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts.get("train", 0) == 0 and counts.get("features", 0) == 0, out
    for rule in ("simulate", "reconstruct", "predict", "measure", "mesh"):
        assert counts.get(rule) == 1, out
    assert counts.get("compare") == 1, out


def test_bad_sheet_fails_before_any_job(tmp_path):
    sheet = (DATA / "tiny_samples.tsv").read_text() + "c1\tcontrol\tsimulate\t\tyeast\t\t\t\n"
    work = make_workdir(tmp_path / "bad", sheet)
    proc = snakemake(work, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "row 3 (sample 'c1'): sample: duplicate id (first used in row 1)" in text
    assert not (work / "results").exists()


def test_ome_zarr_target(finished_run):
    pytest.importorskip("ome_zarr", reason="the ome-zarr extra is not installed")
    from sxtflow import io
    from sxtflow.ngff import read_levels

    snakemake(finished_run, "results/c1/ome-zarr")
    out = finished_run / "results/c1/ome-zarr"
    nodes = read_levels(out / "tomogram.ome.zarr")
    assert {"tomogram", "segmentation", "annotation"} <= set(nodes)
    tomo = io.read_volume(finished_run / "results/c1/tomogram.mrc")
    assert len(nodes["tomogram"]["levels"]) == 3  # 80x96x96 -> 40x48x48 -> 20x24x24
    assert nodes["tomogram"]["scale_um"][0] == pytest.approx(list(tomo.spacing_um))
    labels = io.read_volume(finished_run / "results/c1/labels.mrc").data
    assert (nodes["segmentation"]["levels"][0].compute() == labels).all()
    probs = read_levels(out / "probabilities.ome.zarr")["probabilities"]
    assert probs["levels"][0].shape == (6, *labels.shape)
