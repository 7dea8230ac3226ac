"""The annotation loop without a GUI (sxtflow.annotation): save into the sheet, train, preview.

The preview and the training must be the pipeline's own computation: the tests compare them
with the feature-store training (``run_features`` + ``run_train``) and the predict rule's
``run_predict`` on the same tiny project.
"""

from __future__ import annotations

import numpy as np
import pytest
from _annotation_project import CONFIG, make_project

from sxtflow import io, segment, stages
from sxtflow.annotation import preview_region
from sxtflow.io import InputError
from sxtflow.samples import load_sample_sheet, set_value


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("annotation") / "proj")


def test_files_and_suggestions(project):
    proj, _ = project
    files = proj.files("s2")
    assert files.annotation is None
    assert files.save_to.as_posix() == "annotations/s2.mrc"
    assert proj.files("s1").save_to.as_posix() == "data/s1_annotation.mrc"
    sugg = proj.suggestions("s2")
    assert 1 <= len(sugg) <= 5
    scores = [s["score"] for s in sugg]  # most useful first
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(0 < s["mean_uncertainty"] <= 1 for s in sugg)
    assert proj.annotated() == ["s1"]
    with pytest.raises(InputError, match="no sample 'nope'"):
        proj.files("nope")


def test_save_annotation_grid_values_and_sheet(project):
    proj, truth = project
    root = proj.workdir
    before = (root / "samples.tsv").read_text()
    vol = proj.tomogram("s2")
    z = proj.suggestions("s2")[0]["z"]
    ann = np.zeros(vol.data.shape, np.uint8)
    ann[z, :4, :4] = proj.classes["ice"]
    ann[z, 22:26, 22:26] = truth["s2"][z, 22:26, 22:26]
    bad = ann.copy()
    bad[z, 0, 0] = 42  # not a class
    with pytest.raises(InputError, match=r"label values \[42\] are not classes"):
        proj.save_annotation("s2", bad)
    with pytest.raises(InputError, match="differs from the tomogram"):
        proj.save_annotation("s2", ann[:-1])
    assert not (root / "annotations").exists()
    assert (root / "samples.tsv").read_text() == before  # nothing written on error

    path = proj.save_annotation("s2", ann)
    assert path.as_posix() == "annotations/s2.mrc"
    saved = io.read_volume(root / path)
    assert saved.data.shape == vol.data.shape
    assert saved.voxel_nm == vol.voxel_nm
    np.testing.assert_array_equal(saved.data, ann)
    text = (root / "samples.tsv").read_text().splitlines()
    assert text[0] == "# tiny annotation project"  # comment kept
    assert text[2] == before.splitlines()[2]  # other rows untouched
    assert text[3].split("\t")[5] == "annotations/s2.mrc"
    sheet = load_sample_sheet(root / "samples.tsv", base_dir=root)
    assert sheet.loc["s2", "annotation"] == "annotations/s2.mrc"
    assert proj.annotated() == ["s1", "s2"]
    np.testing.assert_array_equal(proj.annotation("s2"), ann)
    # saving again keeps the sheet as it is
    proj.save_annotation("s2", ann)
    assert (root / "samples.tsv").read_text().splitlines() == text


def test_training_equals_feature_store_training(project, tmp_path):
    proj, _ = project
    root = proj.workdir
    model, card, note = proj.train(["s1"], out_model=None)
    assert note == ""
    feats = tmp_path / "s1.zarr"
    opts = CONFIG["features"]
    stages.run_features(root / "results/s1/tomogram.mrc", feats, **opts)
    ref_card = stages.run_train(
        [feats],
        [root / "data/s1_annotation.mrc"],
        tmp_path / "ref.skops",
        classes=proj.classes,
        seed=CONFIG["seed"],
        **CONFIG["train"],
    )
    ref, _ = segment.load_model(tmp_path / "ref.skops")
    assert card["n_used_voxels"] == ref_card["n_used_voxels"]
    assert card["feature_spec"] == ref_card["feature_spec"]
    vol = proj.tomogram("s2").data
    a, pa = segment.predict_volume(
        vol, model, card, out_probabilities=np.zeros((4, *vol.shape), np.float32)
    )
    b, pb = segment.predict_volume(
        vol, ref, ref_card, out_probabilities=np.zeros((4, *vol.shape), np.float32)
    )
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pa, pb)


def test_preview_equals_pipeline_prediction(project):
    proj, _ = project
    root = proj.workdir
    model, card = segment.load_model(root / "results/model/classifier.skops")
    pred = io.read_volume(root / "results/s2/prediction.mrc").data
    shape = pred.shape
    # a slice, a box across block borders (8 in z, 32 in y/x) and the volume's corner
    regions = [
        preview_region(shape, 19),
        (slice(5, 12), slice(20, 45), slice(25, 40)),
        (slice(0, 2), slice(0, 48), slice(40, 48)),
    ]
    for region in regions:
        got = proj.preview("s2", model, card, region)
        np.testing.assert_array_equal(got, pred[region])
    corner = proj.preview("s2", model, card, (slice(3, 4), slice(0, 3), slice(0, 3)))
    assert not corner.any()  # outside the field of view: no data, label 0
    # what the predict rule refuses, the preview refuses: a model of another voxel size
    other = {**card, "voxel_nm": [2 * v for v in card["voxel_nm"]]}
    with pytest.raises(InputError, match="differs by 50 %"):
        proj.preview("s2", model, other, regions[0])


def test_train_on_painted_classes_only(project):
    proj, truth = project
    z = proj.suggestions("s2")[1]["z"]
    ann = np.zeros(truth["s2"].shape, np.uint8)
    ann[z, :3, 20:28] = proj.classes["ice"]
    ann[z, 20:28, 20:28] = proj.classes["cytoplasm"]
    proj.save_annotation("s2", ann)
    _, card, note = proj.train(["s2"], out_model=None)
    assert card["classes"] == {"ice": 1, "cytoplasm": 2}
    assert note == "not annotated yet, left out: nucleus, vacuole"
    ann[:] = 0
    ann[z, :3, :3] = proj.classes["ice"]
    proj.save_annotation("s2", ann)
    with pytest.raises(ValueError, match="at least two classes"):
        proj.train(["s2"], out_model=None)


def test_tomogram_missing_names_the_command(project, tmp_path):
    proj, _ = project
    set_value(proj.sheet_path, "s2", "kind", "tomogram")  # unchanged, exercises rewrite
    from sxtflow.annotation import AnnotationProject

    other = AnnotationProject(dict(proj.config), tmp_path)
    (tmp_path / "samples.tsv").write_text(
        "sample\tcondition\tkind\tcell_type\nsim\twt\tsimulate\tyeast\n"
    )
    with pytest.raises(InputError, match="snakemake --cores 2 results/sim/tomogram.mrc"):
        other.tomogram("sim")


def test_set_value_keeps_the_sheet(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_bytes(
        b"sample\tcondition\tkind\r\n# a comment\r\na\twt\ttomogram\r\nb\tko\ttomogram\r\n"
    )
    set_value(path, "b", "annotation", "ann/b.mrc")
    assert path.read_bytes() == (
        b"sample\tcondition\tkind\tannotation\r\n# a comment\r\na\twt\ttomogram\r\n"
        b"b\tko\ttomogram\tann/b.mrc\r\n"
    )
    set_value(path, "a", "annotation", "ann/a.mrc")
    assert path.read_bytes().splitlines()[2] == b"a\twt\ttomogram\tann/a.mrc"
    with pytest.raises(InputError, match="0 rows of sample 'c'"):
        set_value(path, "c", "annotation", "x")
    with pytest.raises(ValueError, match="tabs or line breaks"):
        set_value(path, "a", "annotation", "x\ty")
    with pytest.raises(ValueError, match="unknown column"):
        set_value(path, "a", "colour", "red")
