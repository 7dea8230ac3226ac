"""Bad input and misuse of the CLI and the sample sheet (issue 15): every case ends in one
named error (file, what, what to do) or in correct behaviour, never in a traceback, a hang or
silent harm to a file already computed."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _cells import sha, tiny_cell

from sxtflow import stages
from sxtflow.cli import main
from sxtflow.io import InputError, Projections, Volume, read_volume, write_projections, write_volume
from sxtflow.samples import RESERVED_IDS, load_sample_sheet

ROOT = Path(__file__).resolve().parents[2]
HEADER = "sample\tcondition\tkind\tinput\tcell_type\tvoxel_nm\tannotation\ttruth\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One tiny cell through simulate → reconstruct → features → train → predict (~3 s)."""
    d = tmp_path_factory.mktemp("misuse")
    return d, tiny_cell(d, until="predict")


def cli_error(capsys, argv):
    """Run the CLI; return its one-line error (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


# --------------------------------------------------------------------------- tracebacks


def test_directory_as_input_is_named(made, capsys, tmp_path):
    d, f = made
    err = cli_error(capsys, ["features", f["feat"], tmp_path / "x.zarr"])
    assert err.startswith(f"sxtflow: error: {f['feat']}: ") and "zarr store" in err
    plain = tmp_path / "plain"
    plain.mkdir()
    err = cli_error(capsys, ["reconstruct", plain, tmp_path / "t.mrc"])
    assert f"{plain}: is a directory, not a file" in err
    err = cli_error(capsys, ["reconstruct", plain, tmp_path / "t.mrc", "--kind", "tomogram"])
    assert f"{plain}: is a directory, not a file" in err


def test_sheet_input_that_is_a_directory(tmp_path):
    (tmp_path / "data.mrc").mkdir()
    sheet = tmp_path / "s.tsv"
    sheet.write_text(HEADER + "a\tc\ttomogram\tdata.mrc\t\t\t\t\n")
    with pytest.raises(InputError, match=r"row 1 \(sample 'a'\): input: 'data.mrc' is a directory"):
        load_sample_sheet(sheet, tmp_path)


def test_output_onto_an_existing_directory(made, capsys, tmp_path):
    d, f = made
    out = tmp_path / "b.zarr"
    (out / "keep").mkdir(parents=True)
    err = cli_error(capsys, ["reconstruct", f["tomo"], out, "--kind", "tomogram"])
    assert f"{out}: the output (tomogram) is an existing directory" in err
    assert (out / "keep").is_dir()
    # a store output may replace a store, never another directory (a mistyped results/)
    results = tmp_path / "results"
    (results / "c1").mkdir(parents=True)
    err = cli_error(capsys, ["features", f["tomo"], results])
    assert "not a zarr store" in err and (results / "c1").is_dir()
    # a directory output onto a file
    err = cli_error(capsys, ["mesh", f["pred"], f["tomo"], f["ann"]])
    assert f"{f['ann']}: " in err and "existing file" in err


@pytest.mark.parametrize(
    "argv, victim",
    [
        (["features", "tomo", "tomo"], "tomo"),
        (["predict", "tomo", "model", "tomo"], "tomo"),
        (["predict", "tomo", "model", "pred", "--uncertainty", "model"], "model"),
        (["predict", "tomo", "model", "card"], "card"),
        (["evaluate", "pred", "truth", "pred"], "pred"),
        (["annotate", "truth", "truth"], "truth"),
        (["reconstruct", "proj", "proj"], "proj"),
        (["reconstruct", "proj", "out", "--qc", "proj"], "proj"),
        (["measure", "pred", "tomo", "x.tsv", "pred"], "pred"),
        (["train", "--features", "feat", "--annotations", "ann", "--model", "ann"], "ann"),
        (["simulate", "out", "out", "lac2"], None),
    ],
)
def test_output_that_is_an_input_is_refused(made, capsys, tmp_path, argv, victim):
    d, f = made
    paths = dict(f, card=f["model"].with_suffix(".json"), out=tmp_path / "o.mrc",
                 lac2=tmp_path / "l.mrc")  # fmt: skip
    before = {k: sha(p) for k, p in paths.items() if Path(p).is_file()}
    err = cli_error(capsys, [paths.get(a, a) for a in argv])
    if victim is None:
        assert "given as two outputs" in err
    else:
        assert f"{paths[victim]}: the output" in err and "is also an input" in err
    assert {k: sha(p) for k, p in paths.items() if Path(p).is_file()} == before


def test_output_linked_to_an_input_is_refused(made, capsys, tmp_path):
    d, f = made
    link = tmp_path / "link.mrc"
    link.symlink_to(f["tomo"])
    hard = tmp_path / "hard.mrc"
    hard.hardlink_to(f["tomo"])
    before = sha(f["tomo"])
    for out in (link, hard):
        err = cli_error(capsys, ["predict", f["tomo"], f["model"], out])
        assert "is also an input (tomogram)" in err
    assert sha(f["tomo"]) == before


def test_compare_output_that_is_a_listed_table_is_refused(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "organelles.tsv").write_text("class\tvolume_um3\nnucleus\t1\n")
    (tmp_path / "cell.tsv").write_text("cell_volume_um3\n30\n")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(
        f"sample\tcondition\tcell\torganelles\na\tc\t{tmp_path}/cell.tsv\t{out}/organelles.tsv\n"
    )
    err = cli_error(capsys, ["compare", sheet, out, "--reference", "c"])
    assert "is also an input (sheet organelles)" in err
    assert (out / "organelles.tsv").read_text().startswith("class")


def test_unknown_class_name_is_a_usage_error(made, capsys):
    d, f = made
    err = cli_error(
        capsys, ["evaluate", f["pred"], f["truth"], d / "e.tsv", "--classes", "ice,nucleous"]
    )
    assert "argument --classes" in err and "unknown label 'nucleous'" in err


def test_predict_block_larger_than_the_volume_is_clipped(made, tmp_path):
    d, f = made
    out = tmp_path / "pred.mrc"
    stages.run_predict(f["tomo"], f["model"], out, block=(100000, 100000, 100000))
    np.testing.assert_array_equal(read_volume(out).data, read_volume(f["pred"]).data)


def test_predict_on_two_threads_writes_the_same_files(made, tmp_path, monkeypatch):
    # the labels and the uncertainty are written on a thread beside the read-back and
    # the suggestions: the same bytes as one after the other, and their errors surface
    d, f = made
    got = {}
    for threads in (1, 2):
        o = tmp_path / str(threads)
        o.mkdir()
        stages.run_predict(
            f["tomo"], f["model"], o / "p.mrc", o / "u.mrc", out_suggestions=o / "s.json",
            threads=threads,
        )  # fmt: skip
        got[threads] = [sha(o / n) for n in ("p.mrc", "u.mrc", "s.json")]
    assert got[1] == got[2]
    from sxtflow.stages import _segment

    write = _segment.io.write_volume

    def fail_on_uncertainty(path, vol):
        if Path(path).name == "u.mrc":
            raise OSError("disk full")
        write(path, vol)

    monkeypatch.setattr(_segment.io, "write_volume", fail_on_uncertainty)
    with pytest.raises(OSError, match="disk full"):
        stages.run_predict(f["tomo"], f["model"], tmp_path / "p.mrc", tmp_path / "u.mrc",
                           threads=2)  # fmt: skip


@pytest.mark.parametrize("sample", [*RESERVED_IDS, "Compare", "MODEL"])
def test_sheet_refuses_ids_of_aggregate_outputs(tmp_path, sample):
    sheet = tmp_path / "s.tsv"
    sheet.write_text(HEADER + f"{sample}\tc\tsimulate\t\tyeast\t\tauto\t\n")
    with pytest.raises(InputError, match=rf"row 1 \(sample '{sample}'\): sample: .* is reserved"):
        load_sample_sheet(sheet, tmp_path)


def test_reserved_ids_cover_every_aggregate_output_of_the_workflow():
    # every path the rules write under results/ that is not per sample names a reserved id
    import re

    text = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    tops = set(re.findall(r'"results/([^/{"]+)', text)) | {"report.html"}  # README's report
    assert tops and tops <= set(RESERVED_IDS), tops - set(RESERVED_IDS)


@pytest.mark.workflow
def test_reserved_id_fails_planning_with_the_sheet_error(tmp_path):
    from _snakemake import make_workdir, snakemake

    sheet = HEADER + "compare\tcontrol\tsimulate\t\tyeast\t\tauto\t\n"
    work = make_workdir(tmp_path / "w", sheet)
    proc = snakemake(work, "-n", check=False)
    text = proc.stdout + proc.stderr
    assert (
        proc.returncode != 0 and "row 1 (sample 'compare'): sample: 'compare' is reserved" in text
    )
    assert "AmbiguousRuleException" not in text and "ChildIOException" not in text


# --------------------------------------------------------------------------- silent harm


def test_sirt_with_zero_iterations_is_refused(made, capsys, tmp_path):
    d, f = made
    out = tmp_path / "t.mrc"
    err = cli_error(
        capsys, ["reconstruct", f["proj"], out, "--algorithm", "sirt", "--iterations", "0"]
    )
    assert "--iterations" in err and "≥ 1" in err
    with pytest.raises(InputError, match=r"p\.h5: sirt needs iterations ≥ 1"):
        stages.run_reconstruct(f["proj"], out, algorithm="sirt", iterations=0)
    assert not out.exists()


@pytest.mark.parametrize("value", [1e30, -1e30, 500.0])
def test_absurd_lac_is_refused_before_features(made, capsys, tmp_path, value):
    d, f = made
    tomo = read_volume(f["tomo"])
    data = tomo.data.copy()
    data[3, 4, 5] = value
    bad = write_volume(tmp_path / "bad.mrc", Volume(data, tomo.voxel_nm, tomo.meta))
    err = cli_error(capsys, ["features", bad, tmp_path / "f.zarr"])
    assert f"{bad}: values" in err and "outside the physical LAC range -100..100" in err
    assert not (tmp_path / "f.zarr").exists()
    err = cli_error(capsys, ["predict", bad, f["model"], tmp_path / "p.mrc"])
    assert "physical LAC range" in err
    err = cli_error(capsys, ["reconstruct", bad, tmp_path / "t.mrc", "--kind", "tomogram"])
    assert "physical LAC range" in err


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "0", "-2"])
def test_sheet_refuses_non_finite_voxel_size(tmp_path, value):
    sheet = tmp_path / "s.tsv"
    sheet.write_text(HEADER + f"a\tc\tsimulate\t\tyeast\t{value}\tauto\t\n")
    with pytest.raises(InputError, match=rf"voxel_nm: '{value}' is not a positive finite number"):
        load_sample_sheet(sheet, tmp_path)


@pytest.mark.parametrize("value, ok", [("25", True), ("0.5", True), ("", True), ("inf", False),
                                       ("nan", False), ("0", False), ("1e3", False)])  # fmt: skip
def test_schema_pattern_of_voxel_size_is_applied(tmp_path, value, ok):
    import pandas as pd
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from sxtflow.samples import sheet_as_text

    schema = str(ROOT / "workflow/schemas/samples.schema.yaml")
    sheet = tmp_path / "s.tsv"
    sheet.write_text(HEADER + "a\tc\tsimulate\t\tyeast\t25\tauto\t\n")
    good = sheet_as_text(load_sample_sheet(sheet, tmp_path))
    assert good.loc["a", "voxel_nm"] == "25"
    frame = pd.DataFrame([dict(good.iloc[0], voxel_nm=value)])
    if ok:
        validate(frame, schema=schema)
    else:
        with pytest.raises(WorkflowError):
            validate(frame, schema=schema)
    # the workflow validates the sheet with its voxel sizes (the column is not dropped)
    common = (ROOT / "workflow/rules/common.smk").read_text()
    assert "validate(sheet_as_text(samples)" in common


# --------------------------------------------------------------------------- the hang


def test_zero_block_fails_at_once(made, tmp_path):
    d, f = made
    cmd = [
        sys.executable,
        "-m",
        "sxtflow.cli",
        "features",
        str(f["tomo"]),
        str(tmp_path / "f.zarr"),
    ]
    proc = subprocess.run([*cmd, "--block", "0,0,0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--block" in proc.stderr and "≥ 1" in proc.stderr
    with pytest.raises(ValueError, match="block must be three integers ≥ 1"):
        stages.run_features(f["tomo"], tmp_path / "f.zarr", block=(0, 0, 0))
    with pytest.raises(ValueError, match="block must be three integers ≥ 1"):
        stages.run_predict(f["tomo"], f["model"], tmp_path / "p.mrc", block=(64, 0, 64))
    from sxtflow.segment import FeatureSpec, write_features

    with pytest.raises(ValueError, match="≥ 1"):
        write_features(tmp_path / "g.zarr", read_volume(f["tomo"]), FeatureSpec(), block=(0, 0, 0))
    assert not (tmp_path / "f.zarr").exists() and not (tmp_path / "g.zarr").exists()


# --------------------------------------------------------------------------- messages


def test_swapped_flats_and_darks_name_the_file(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(500, 900, (12, 8, 16)).astype(np.float32)
    flats = np.full((2, 8, 16), 100.0, np.float32)  # swapped: flats darker than darks
    darks = np.full((2, 8, 16), 1000.0, np.float32)
    theta = np.linspace(0, np.pi, 12, endpoint=False)
    path = write_projections(tmp_path / "swapped.h5", Projections(data, theta, flats, darks, 50.0))
    with pytest.raises(InputError) as err:
        stages.run_reconstruct(path, tmp_path / "t.mrc")
    assert err.value.path == str(path) and "flat field is not above the dark field" in str(
        err.value
    )
    no_flats = write_projections(tmp_path / "raw.h5", Projections(data, theta, None, None, 50.0))
    with pytest.raises(InputError) as err:
        stages.run_reconstruct(no_flats, tmp_path / "t.mrc")
    assert err.value.path == str(no_flats)


def test_center_outside_the_detector_says_so(made, capsys, tmp_path):
    d, f = made
    err = cli_error(capsys, ["reconstruct", f["proj"], tmp_path / "t.mrc", "--center", "1e9"])
    assert f"{f['proj']}: center 1e+09 is not a detector column" in err
    assert "within columns 0..47" in err and "sparse projector" not in err
    err = cli_error(capsys, ["reconstruct", f["proj"], tmp_path / "t.mrc", "--center", "nan"])
    assert "--center" in err


def test_negative_header_voxel_size_is_called_so(tmp_path):
    import mrcfile

    path = tmp_path / "neg.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.zeros((4, 4, 4), np.float32))
        mrc.voxel_size = (-10.0, 10.0, 10.0)
    with pytest.raises(InputError) as err:
        read_volume(path)
    assert "not positive and finite" in err.value.problem and "-1" in err.value.problem
    assert "no voxel size" not in err.value.problem
