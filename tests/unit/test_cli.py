"""The ``sxtflow`` command line: every stage by hand on one small simulated cell."""

import json

import numpy as np
import pandas as pd
import pytest

from sxtflow.cli import main
from sxtflow.io import read_volume


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    f = {k: d / v for k, v in {
        "proj": "p.h5", "truth": "truth.mrc", "lac": "lac.mrc", "ann": "ann.mrc",
        "tomo": "tomo.mrc", "feat": "f.zarr", "model": "m.skops", "pred": "pred.mrc",
        "eval": "eval.tsv", "org": "org.tsv", "cell": "cell.tsv",
    }.items()}  # fmt: skip
    common = ["--shape", "48,56,56", "--voxel-nm", "100", "--n-angles", "60", "--seed", "2"]
    assert main(["simulate", str(f["proj"]), str(f["truth"]), str(f["lac"]), *common]) == 0
    assert main(["annotate", str(f["truth"]), str(f["ann"]), "--seed", "1", "--rim"]) == 0
    assert main(["reconstruct", str(f["proj"]), str(f["tomo"]), "--qc", str(d / "qc.json")]) == 0
    assert (
        main(["features", str(f["tomo"]), str(f["feat"]), "--sigmas", "1,2.5",
              "--family-sigmas", "gaussian=1,2.5,6"]) == 0
    )  # fmt: skip
    assert (
        main(["train", "--features", str(f["feat"]), "--annotations", str(f["ann"]),
              "--model", str(f["model"]), "--n-estimators", "20", "--estimator", "extra_trees",
              "--max-depth", "none", "--min-samples-leaf", "2",
              "--class-weight", "sqrt_balanced"]) == 0
    )  # fmt: skip
    assert main(["predict", str(f["tomo"]), str(f["model"]), str(f["pred"])]) == 0
    assert main(["evaluate", str(f["pred"]), str(f["truth"]), str(f["eval"])]) == 0
    assert main(["measure", str(f["pred"]), str(f["tomo"]), str(f["org"]), str(f["cell"])]) == 0
    assert main(["mesh", str(f["pred"]), str(f["tomo"]), str(d / "meshes")]) == 0
    return d, f


def test_chain_produces_calibrated_tomogram_and_segmentation(chain):
    d, f = chain
    tomo = read_volume(f["tomo"])
    assert tomo.voxel_nm == (100.0, 100.0, 100.0)
    qc = json.loads((d / "qc.json").read_text())
    assert qc["unit"] == "1/um" and qc["ice_lac_per_um"] == pytest.approx(0.11, rel=0.15)
    ev = pd.read_csv(f["eval"], sep="\t").set_index("class")
    assert ev.loc["cell", "dice"] > 0.9
    cell = pd.read_csv(f["cell"], sep="\t")
    assert cell["cell_volume_um3"].iloc[0] > 10
    assert (d / "meshes/scene.glb").stat().st_size > 1000
    assert np.isin(np.unique(read_volume(f["pred"]).data), [0, 1, 2, 4, 7, 8, 9]).all()
    card = json.loads(f["model"].with_suffix(".json").read_text())
    assert card["class_weight"] == "sqrt_balanced"
    assert card["estimator"] == "extra_trees" and card["max_depth"] is None
    assert card["min_samples_leaf"] == 2
    assert card["feature_spec"]["family_sigmas"] == {"gaussian": [1.0, 2.5, 6.0]}
    assert read_volume(f["ann"]).meta["rim"] is True


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    with pytest.raises(SystemExit) as exc:
        main(["reconstruct", str(bad), str(tmp_path / "out.mrc")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sxtflow: error: ") and "broken.h5" in err and "\n" not in err
    assert not (tmp_path / "out.mrc").exists()


def test_family_sigmas_option_parses_and_refuses_garbage(tmp_path, capsys):
    from sxtflow.cli import _family_sigmas

    assert _family_sigmas("gaussian=0.7,8; ggm=1") == {"gaussian": [0.7, 8.0], "ggm": [1.0]}
    with pytest.raises(SystemExit) as exc:
        main(["features", "t.mrc", str(tmp_path / "f.zarr"), "--family-sigmas", "gaussian"])
    assert exc.value.code == 2 and "family=s1,s2" in capsys.readouterr().err


def test_reconstruct_limited_tilt_auto_sirt_tv_and_crop(tmp_path):
    proj, truth, lac = tmp_path / "p.h5", tmp_path / "t.mrc", tmp_path / "l.mrc"
    common = ["--shape", "24,48,48", "--voxel-nm", "120", "--n-angles", "41", "--seed", "4"]
    assert (
        main(["simulate", str(proj), str(truth), str(lac), *common, "--tilt-range-deg", "60"]) == 0
    )
    qc, tomo = tmp_path / "qc.json", tmp_path / "tomo.mrc"
    args = ["reconstruct", str(proj), str(tomo), "--qc", str(qc), "--iterations", "20"]
    assert main([*args, "--crop-rows", "2,6"]) == 0
    meta = json.loads(qc.read_text())
    assert meta["algorithm"] == "sirt-tv" and meta["tv_weight_per_um"] == 0.01
    assert meta["crop_rows"] == [2, 6]
    assert read_volume(tomo).data.shape == (4, 48, 48)
    with pytest.raises(SystemExit):
        main([*args, "--crop-rows", "6,2"])
