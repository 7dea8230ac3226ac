"""Issue 12's "also seen" items at the stage level, on tiny volumes: units, model voxel size,
evaluation truth, cell.tsv, QC plausibility, the auto algorithm's coverage rule."""

import numpy as np
import pytest

from sxtflow import stages
from sxtflow.cli import main
from sxtflow.io import InputError, Volume, read_json, read_table, read_volume, write_volume
from sxtflow.labels import default_labels

N = 24
CELL = {"ice": 1, "cytoplasm": 2}
FAST = {"n_estimators": 5, "max_depth": 6, "min_samples_leaf": 1, "max_per_class": 3000}
FEATURES = {"sigmas": [1.0], "families": ["gaussian", "ggm"], "family_sigmas": {}}


def ball(n=N, radius=0.35):
    """Truth (1 = ice, 2 = cytoplasm: a ball) and its LAC in µm⁻¹ with noise."""
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2
    truth = np.where(np.sqrt(z**2 + y**2 + x**2) < radius * n, 2, 1).astype(np.uint8)
    rng = np.random.default_rng(0)
    lac = np.where(truth == 2, 0.3, 0.1) + rng.normal(0, 0.02, truth.shape)
    return truth, lac.astype(np.float32)


def scribbles(truth):
    ann = np.zeros_like(truth)
    ann[::6, ::3, :] = truth[::6, ::3, :]
    return ann


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on one 24³ tomogram of 50 nm voxels."""
    d = tmp_path_factory.mktemp("trained")
    truth, lac = ball()
    write_volume(d / "tomo.mrc", Volume(lac, 50.0))
    write_volume(d / "ann.mrc", Volume(scribbles(truth), 50.0))
    write_volume(d / "truth.mrc", Volume(truth, 50.0))
    stages.run_features(d / "tomo.mrc", d / "f.zarr", block=[N] * 3, **FEATURES)
    card = stages.run_train(
        [d / "f.zarr"], [d / "ann.mrc"], d / "m.skops", classes=CELL, seed=1, **FAST
    )
    stages.run_predict(d / "tomo.mrc", d / "m.skops", d / "p.mrc")
    return d, card


def test_model_card_records_voxel_size_label_table_classes_and_features(trained):
    _, card = trained
    assert card["voxel_nm"] == [50.0, 50.0, 50.0]
    assert card["classes"] == CELL
    assert card["label_table"]["source"] == "bundled"
    assert {"value": 4, "name": "nucleus"}.items() <= card["label_table"]["labels"][3].items()
    assert card["feature_spec"]["sigmas"] == [1.0]


def test_predict_refuses_a_tomogram_of_another_voxel_size(trained):
    # today's code segments 25 nm data with a 50 nm model without a word
    d, _ = trained
    lac = read_volume(d / "tomo.mrc").data
    write_volume(d / "fine.mrc", Volume(lac, 25.0))
    with pytest.raises(InputError) as err:
        stages.run_predict(d / "fine.mrc", d / "m.skops", d / "fine_p.mrc")
    text = str(err.value)
    assert str(d / "fine.mrc") in text and "differs by 50 %" in text
    assert "resample_to_nm: 50" in text and "retrain" in text
    assert not (d / "fine_p.mrc").exists()
    # within 5 % is the same grid
    write_volume(d / "near.mrc", Volume(lac, 51.0))
    stages.run_predict(d / "near.mrc", d / "m.skops", d / "near_p.mrc")
    assert read_volume(d / "near_p.mrc").data.shape == (N, N, N)


def test_training_across_voxel_sizes_is_refused_unless_resampled(trained, tmp_path):
    d, _ = trained
    truth, lac = ball(2 * N)
    write_volume(tmp_path / "fine.mrc", Volume(lac, 25.0))
    write_volume(tmp_path / "ann.mrc", Volume(scribbles(truth), 25.0))
    stages.run_features(tmp_path / "fine.mrc", tmp_path / "f.zarr", block=[2 * N] * 3, **FEATURES)
    with pytest.raises(InputError, match=r"differs by more than 5 %.*resample_to_nm"):
        stages.run_train(
            [d / "f.zarr", tmp_path / "f.zarr"],
            [d / "ann.mrc", tmp_path / "ann.mrc"],
            tmp_path / "m.skops",
            classes=CELL,
            **FAST,
        )
    # resampled to 50 nm on input, the annotation (on the 25 nm grid) follows the tomogram
    stages.run_reconstruct(
        tmp_path / "fine.mrc", tmp_path / "r.mrc", kind="tomogram", resample_to_nm=50.0
    )
    r = read_volume(tmp_path / "r.mrc")
    assert r.voxel_nm == (50.0, 50.0, 50.0) and r.data.shape == (N, N, N)
    assert r.meta["resampled_from"] == {"voxel_nm": [25.0] * 3, "shape": [2 * N] * 3}
    stages.run_features(tmp_path / "r.mrc", tmp_path / "r.zarr", block=[N] * 3, **FEATURES)
    card = stages.run_train(
        [d / "f.zarr", tmp_path / "r.zarr"],
        [d / "ann.mrc", tmp_path / "ann.mrc"],
        tmp_path / "m2.skops",
        classes=CELL,
        tomogram_paths=[d / "tomo.mrc", tmp_path / "r.mrc"],
        **FAST,
    )
    assert card["voxel_nm"] == [50.0] * 3 and card["n_tomograms"] == 2


def test_train_maps_fine_labels_and_says_which_classes_were_annotated(trained, tmp_path):
    d, _ = trained
    ann = read_volume(d / "ann.mrc").data.copy()
    ann[ann == 2] = default_labels().value("filopodium")  # a fine label of the cytoplasm
    write_volume(tmp_path / "fine_ann.mrc", Volume(ann, 50.0))
    card = stages.run_train(
        [d / "f.zarr"], [tmp_path / "fine_ann.mrc"], tmp_path / "m.skops", classes=CELL, **FAST
    )
    assert card["n_training_voxels"]["cytoplasm"] > 0
    six = default_labels().class_values(["ice", "cytoplasm", "nucleus", "mitochondrion"])
    with pytest.raises(ValueError, match=r"nucleus, mitochondrion have no annotated voxels") as e:
        stages.run_train([d / "f.zarr"], [d / "ann.mrc"], tmp_path / "m.skops", classes=six)
    assert "`classes` to the classes you annotated (found: ice, cytoplasm)" in str(e.value)


def evaluate(d, truth_path, out, **kw):
    return stages.run_evaluate(
        d / "p.mrc", truth_path, out, classes=CELL, sample="s", **kw
    )  # fmt: skip


def test_evaluate_validates_its_truth(trained, tmp_path):
    d, _ = trained
    truth = read_volume(d / "truth.mrc").data
    good = evaluate(d, d / "truth.mrc", tmp_path / "e.tsv").set_index("class")
    assert good.loc["cell", "dice"] > 0.9 and (good["n_ignored_voxels"] == 0).all()
    # raw values of another numbering (an Amira label field: 40 = cell, 41 = void)
    write_volume(tmp_path / "other.mrc", Volume(np.where(truth == 2, 40, 41).astype(np.uint8), 50))
    with pytest.raises(InputError, match=r"truth values \[40, 41\] are not in the label table"):
        evaluate(d, tmp_path / "other.mrc", tmp_path / "e2.tsv")
    # the same truth at another voxel size
    write_volume(tmp_path / "t25.mrc", Volume(truth, 25.0))
    with pytest.raises(InputError, match=r"truth voxel size \(25.0, 25.0, 25.0\) nm differs"):
        evaluate(d, tmp_path / "t25.mrc", tmp_path / "e3.tsv")
    write_volume(tmp_path / "small.mrc", Volume(truth[:-1], 50.0))
    with pytest.raises(InputError, match=r"truth shape \(23, 24, 24\) differs"):
        evaluate(d, tmp_path / "small.mrc", tmp_path / "e4.tsv")
    # a value in the table but in none of the classes
    with pytest.raises(InputError, match=r"1 \(ice\) belong to none of the classes"):
        stages.run_evaluate(
            d / "p.mrc", d / "truth.mrc", tmp_path / "e5.tsv", classes={"cytoplasm": 2}, sample="s"
        )
    assert not any((tmp_path / f"e{i}.tsv").exists() for i in range(2, 6))
    # an explicit "unscored" value
    unsure = truth.copy()
    unsure[: N // 2] = 255
    write_volume(tmp_path / "unsure.mrc", Volume(unsure, 50.0))
    table = evaluate(d, tmp_path / "unsure.mrc", tmp_path / "e6.tsv", ignore=[255])
    assert (table["n_ignored_voxels"] == (unsure == 255).sum()).all()
    assert table.set_index("class").loc["cell", "dice"] > 0.9


def test_cli_evaluate_exits_2_on_a_truth_of_another_voxel_size(trained, tmp_path, capsys):
    # today: Dice of mismatched grids, exit 0
    d, _ = trained
    truth = read_volume(d / "truth.mrc").data
    write_volume(tmp_path / "t25.mrc", Volume(truth, 25.0))
    args = ["evaluate", str(d / "p.mrc"), str(tmp_path / "t25.mrc"), str(tmp_path / "e.tsv")]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--classes", "ice,cytoplasm"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "truth voxel size (25.0, 25.0, 25.0) nm differs" in err
    assert not (tmp_path / "e.tsv").exists()


def test_cell_table_fractions_stay_below_one_and_columns_are_unique(tmp_path):
    # a cell split into three pieces (as a segmentation with ice across it gives)
    lab = np.ones((20, 40, 20), np.uint8)
    lab[4:16, 2:12, 4:16] = 2
    lab[4:16, 14:26, 4:16] = 2
    lab[4:16, 28:38, 4:16] = 2
    lab[7:12, 16:22, 7:12] = 4  # a nucleus in the largest piece
    lac = np.where(lab == 1, 0.1, 0.3).astype(np.float32)
    write_volume(tmp_path / "lab.mrc", Volume(lab, 50.0))
    write_volume(tmp_path / "lac.mrc", Volume(lac, 50.0))
    classes = {"ice": 1, "cytoplasm": 2, "nucleus": 4}
    stages.run_measure(
        tmp_path / "lab.mrc",
        tmp_path / "lac.mrc",
        tmp_path / "org.tsv",
        tmp_path / "cell.tsv",
        tmp_path / "chrom.tsv",
        tmp_path / "prof.tsv",
        tmp_path / "surf.tsv",
        classes=classes,
    )
    header = (tmp_path / "cell.tsv").read_text().splitlines()[0].split("\t")
    assert len(header) == len(set(header)), [c for c in header if header.count(c) > 1]
    cell = read_table(tmp_path / "cell.tsv").iloc[0]
    assert 0 < cell["cytoplasm_fraction"] <= 1 and cell["cytoplasm_count"] == 1
    assert cell["cytoplasm_fraction"] + cell["nucleus_fraction"] == pytest.approx(1.0)
    objects = read_table(tmp_path / "org.tsv")
    assert objects["in_cell"].tolist().count(False) == 2  # the two other pieces, listed


def test_qc_warns_about_implausible_lac_for_tomogram_inputs(tmp_path):
    truth, lac = ball()
    write_volume(tmp_path / "ok.mrc", Volume(lac, 50.0))
    write_volume(tmp_path / "per_voxel.mrc", Volume(lac * 4e-4, 50.0))  # ice 4e-5
    stages.run_reconstruct(tmp_path / "ok.mrc", tmp_path / "a.mrc", tmp_path / "a.json",
                           kind="tomogram")  # fmt: skip
    assert read_json(tmp_path / "a.json")["qc_warnings"] == []
    stages.run_reconstruct(
        tmp_path / "per_voxel.mrc", tmp_path / "b.mrc", tmp_path / "b.json", tmp_path / "b.png",
        kind="tomogram",
    )  # fmt: skip
    qc = read_json(tmp_path / "b.json")
    assert len(qc["qc_warnings"]) == 2
    assert qc["qc_warnings"][0].startswith("ice LAC 3.8e-05 µm⁻¹")
    assert "outside the plausible" in qc["qc_warnings"][0] and "517 eV" in qc["qc_warnings"][0]
    assert qc["plausible_lac_per_um"]["ice"][0] < 0.11 < qc["plausible_lac_per_um"]["ice"][1]


def test_auto_algorithm_counts_one_step_beyond_the_span():
    from sxtflow.recon import auto_algorithm

    # 16 angles 0..168.75°: a full 180° of coverage (today: SIRT-TV from the 168.75° span)
    assert auto_algorithm(np.deg2rad(np.arange(16) * 11.25)) == "fbp"
    assert auto_algorithm(np.deg2rad(np.arange(-70, 69, 2.0))) == "sirt-tv"


def test_truth_on_the_original_grid_follows_a_resampled_tomogram(tmp_path):
    import tifffile

    from sxtflow.resample import resample_labels

    truth, _ = ball(2 * N)  # 48³ voxels of 25 nm
    write_volume(tmp_path / "truth.mrc", Volume(truth, 25.0))
    tifffile.imwrite(tmp_path / "truth.tif", truth, photometric="minisblack")  # no voxel size
    record = {"resampled_from": {"voxel_nm": [25.0] * 3, "shape": [2 * N] * 3}}
    coarse = resample_labels(truth, 25.0, 50.0)
    write_volume(tmp_path / "p.mrc", Volume(coarse, 50.0, record))
    write_volume(tmp_path / "bare.mrc", Volume(coarse, 50.0))
    for name in ("truth.mrc", "truth.tif"):
        table = stages.run_evaluate(
            tmp_path / "p.mrc", tmp_path / name, tmp_path / "e.tsv", classes=CELL, sample="s"
        ).set_index("class")
        assert table.loc["cell", "dice"] == 1.0 and table.loc["cell", "n_truth_voxels"] > 0
    with pytest.raises(InputError, match=r"truth shape \(48, 48, 48\) differs"):
        stages.run_evaluate(
            tmp_path / "bare.mrc", tmp_path / "truth.mrc", tmp_path / "e.tsv", classes=CELL,
            sample="s",
        )  # fmt: skip


def test_one_condition_and_a_cell_only_class_set_are_compared(tmp_path):
    # today: "need at least two conditions to compare", then "no classes to plot"
    classes = {"ice": 1, "cytoplasm": 2}
    sheet = []
    for i, radius in enumerate((0.3, 0.35)):
        truth, lac = ball(radius=radius)
        write_volume(tmp_path / f"l{i}.mrc", Volume(truth, 50.0))
        write_volume(tmp_path / f"t{i}.mrc", Volume(lac, 50.0))
        stages.run_measure(
            tmp_path / f"l{i}.mrc", tmp_path / f"t{i}.mrc", tmp_path / f"o{i}.tsv",
            tmp_path / f"c{i}.tsv", classes=classes,
        )  # fmt: skip
        sheet.append({"sample": f"s{i}", "condition": "capillary"})
    out = {k: tmp_path / "cmp" / v for k, v in (
        ("out_cells", "cells.tsv"), ("out_objects", "organelles.tsv"),
        ("out_summary", "summary.tsv"), ("out_tests", "tests.tsv"),
        ("out_measures", "measures.png"), ("out_fractions", "fractions.png"),
    )}  # fmt: skip
    tests = stages.run_compare(
        [tmp_path / "c0.tsv", tmp_path / "c1.tsv"], [tmp_path / "o0.tsv", tmp_path / "o1.tsv"],
        sheet, classes=classes, reference="capillary", n_boot=100, **out,
    )  # fmt: skip
    primary = tests[tests["family"] == "primary"]
    assert primary["measure"].tolist()[0] == "cell_volume_um3" and len(primary) == 4
    assert tests["p_value"].isna().all() and tests["note"].str.startswith("one condition").all()
    assert out["out_measures"].exists() and not out["out_fractions"].exists()
    summary = read_table(out["out_summary"])
    cell = summary[summary["measure"] == "cell_volume_um3"]
    assert cell["n_cells"].tolist() == [2]
