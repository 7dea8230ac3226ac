"""Tests for sxtflow.segment: training on scribbles, block-wise prediction, model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

import sxtflow
from sxtflow.io import InputError
from sxtflow.segment import (
    FeatureSpec,
    class_slice_uncertainty,
    compute_features,
    load_model,
    predict,
    predict_volume,
    save_model,
    slice_uncertainty,
    suggest_slices,
    train,
    training_samples,
    uncertainty,
)

CLASSES = {"ice": 1, "cytoplasm": 2, "lipid_droplet": 3}
SPEC = FeatureSpec(sigmas=(0.7, 1.6, 3.5))
FAST = {"n_estimators": 25, "cv_folds": 2}


class SneakyForest(RandomForestClassifier):
    """A type no model file should contain."""


def synthetic(n=40, seed=0):
    """Ice with two spheres of higher LAC (µm⁻¹) plus noise; truth labels in CLASSES."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:n, :n, :n]
    truth = np.full((n, n, n), CLASSES["ice"], np.uint8)
    r1 = (z - 0.35 * n) ** 2 + (y - 0.35 * n) ** 2 + (x - 0.4 * n) ** 2
    r2 = (z - 0.65 * n) ** 2 + (y - 0.65 * n) ** 2 + (x - 0.6 * n) ** 2
    truth[r1 < (0.22 * n) ** 2] = CLASSES["cytoplasm"]
    truth[r2 < (0.18 * n) ** 2] = CLASSES["lipid_droplet"]
    lac = np.choose(truth, [0.0, 0.1, 0.3, 0.6]).astype(np.float32)
    lac += rng.normal(0.0, 0.08, lac.shape).astype(np.float32)
    return lac, truth


def scribbles(truth, slices):
    """Sparse line annotations on a few z-slices."""
    ann = np.zeros_like(truth)
    for z in slices:
        ann[z, ::5, :] = truth[z, ::5, :]
    return ann


@pytest.fixture(scope="module")
def data():
    lac, truth = synthetic()
    feats = compute_features(lac, SPEC)
    ann = scribbles(truth, (14, 20, 26))
    return feats, truth, ann


@pytest.fixture(scope="module")
def trained(data):
    feats, _, ann = data
    return train([(feats, ann)], CLASSES, spec=SPEC, **FAST)


# --------------------------------------------------------------------------- samples


def test_training_samples_reads_only_annotated_blocks(data):
    feats, _, ann = data
    reads = []

    class Spy:
        shape = feats.shape
        chunks = (feats.shape[0], 10, 10, 10)

        def __getitem__(self, key):
            reads.append(key)
            return feats[key]

    X, y, z = training_samples(Spy(), ann)
    idx = np.nonzero(ann)
    np.testing.assert_array_equal(X, feats[(slice(None), *idx)].T)
    np.testing.assert_array_equal(y, ann[idx])
    np.testing.assert_array_equal(z, idx[0])
    assert X.dtype == np.float32 and y.dtype == np.uint8
    # annotated slices 14, 20 and 26 lie in z-blocks 10–20 and 20–30: half of the 64 blocks
    assert len(reads) == 32
    assert all(k[1].start in (10, 20) for k in reads)


# --------------------------------------------------------------------------- training


def test_training_gives_accurate_segmentation(data, trained):
    feats, truth, _ = data
    model, card = trained
    labels, proba = predict(feats, model, card, block=(16, 16, 16))
    assert labels.dtype == np.uint8 and labels.shape == truth.shape
    assert proba.dtype == np.float32 and proba.shape == (3, *truth.shape)
    np.testing.assert_allclose(proba.sum(axis=0), 1.0, atol=1e-5)
    assert set(np.unique(labels)) <= set(CLASSES.values())
    accuracy = float((labels == truth).mean())
    assert accuracy > 0.95, accuracy
    # probability channels follow the card's class order
    order = list(card["classes"].values())
    np.testing.assert_array_equal(labels, np.array(order, np.uint8)[proba.argmax(axis=0)])


def test_card_structure(trained, data):
    _, _, ann = data
    model, card = trained
    assert card["sxtflow_version"] == sxtflow.__version__
    assert card["classes"] == CLASSES
    assert card["feature_spec"] == SPEC.to_dict()
    assert card["feature_names"] == SPEC.names()
    assert card["estimator"] == "random_forest"
    assert card["n_estimators"] == FAST["n_estimators"]
    assert card["seed"] == 0
    assert card["n_training_voxels"] == {
        n: int(np.count_nonzero(ann == v)) for n, v in CLASSES.items()
    }
    cv = card["cv"]
    assert cv["scheme"] == "z_slice_band" and cv["n_splits"] == 2
    assert 0.8 < cv["accuracy"] <= 1 and 0.5 < cv["balanced_accuracy"] <= 1
    assert set(cv["f1"]) == set(CLASSES)
    assert not any("time" in k or "created" in k for k in card)
    json.dumps(card)  # JSON-serialisable
    assert list(model.classes_) == sorted(CLASSES.values())


def test_class_weight_options(data, trained):
    feats, truth, ann = data
    model, card = trained
    counts = np.array([np.count_nonzero(ann == v) for v in CLASSES.values()], float)
    assert card["class_weight"] == "balanced" and model.class_weight == "balanced"
    # "balanced" is sklearn's n / (k · n_c): the weights the card records
    expect = counts.sum() / (len(counts) * counts)
    np.testing.assert_allclose(list(card["class_weights"].values()), expect, rtol=1e-5)
    m2, c2 = train([(feats, ann)], CLASSES, spec=SPEC, class_weight="sqrt_balanced", **FAST)
    w = np.array([c2["class_weights"][n] for n in CLASSES])
    assert c2["class_weight"] == "sqrt_balanced"
    np.testing.assert_allclose(w * np.sqrt(counts), w[0] * np.sqrt(counts[0]), rtol=1e-5)
    assert float((w * counts).sum() / counts.sum()) == pytest.approx(1.0, rel=1e-5)
    assert m2.class_weight == {
        v: pytest.approx(c2["class_weights"][n], rel=1e-5) for n, v in CLASSES.items()
    }
    m3, c3 = train([(feats, ann)], CLASSES, spec=SPEC, class_weight="none", **FAST)
    assert set(c3["class_weights"].values()) == {1.0}
    # a rare class weighs less without balancing: it claims fewer voxels
    rare = ann.copy()
    drop = np.flatnonzero(rare.ravel() == CLASSES["lipid_droplet"])[::4]
    rare.ravel()[np.setdiff1d(np.flatnonzero(rare.ravel() == CLASSES["lipid_droplet"]), drop)] = 0
    n_lip = []
    for cw in ("balanced", "none"):
        m, c = train([(feats, rare)], CLASSES, spec=SPEC, class_weight=cw, **FAST)
        lab, _ = predict(feats, m, c, block=(20, 20, 20))
        n_lip.append(int((lab == CLASSES["lipid_droplet"]).sum()))
    assert n_lip[0] > n_lip[1], n_lip
    with pytest.raises(ValueError, match="class_weight"):
        train([(feats, ann)], CLASSES, spec=SPEC, class_weight="inverse", **FAST)
    with pytest.raises(ValueError, match="class_weight"):
        train(
            [(feats, ann)],
            CLASSES,
            spec=SPEC,
            estimator="hist_gradient_boosting",
            class_weight="none",
            **FAST,
        )


def test_training_is_deterministic(data, trained):
    feats, _, ann = data
    model, card = trained
    model2, card2 = train([(feats, ann)], CLASSES, spec=SPEC, **FAST)
    assert card2 == card
    la, pa = predict(feats, model, card)
    lb, pb = predict(feats, model2, card2, n_jobs=2)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(pa, pb)


def test_subsampling_and_two_tomograms(data):
    feats, truth, ann = data
    ann2 = scribbles(truth, (10, 30))
    model, card = train(
        [(feats, ann), (feats, ann2)], CLASSES, spec=SPEC, max_per_class=100, **FAST
    )
    assert card["cv"]["scheme"] == "tomogram" and card["cv"]["n_groups"] == 2
    assert card["n_tomograms"] == 2
    assert all(v <= 100 for v in card["n_used_voxels"].values())
    assert card["n_training_voxels"]["ice"] > 100


@pytest.mark.parametrize("estimator", ["extra_trees", "hist_gradient_boosting"])
def test_other_estimators(data, estimator):
    feats, truth, ann = data
    model, card = train(
        [(feats, ann)], CLASSES, spec=SPEC, estimator=estimator, n_estimators=20, cv_folds=0
    )
    assert card["estimator"] == estimator and "skipped" in card["cv"]
    labels, _ = predict(feats, model, card)
    assert (labels == truth).mean() > 0.9


def test_predict_from_zarr_equals_numpy(tmp_path, data, trained):
    zarr = pytest.importorskip("zarr")
    feats, _, _ = data
    model, card = trained
    z = zarr.open_array(
        str(tmp_path / "f.zarr"),
        mode="w",
        shape=feats.shape,
        chunks=(feats.shape[0], 16, 20, 40),
        dtype="f4",
    )
    z[...] = feats
    out_l = zarr.zeros(shape=feats.shape[1:], chunks=(16, 20, 40), dtype="u1")
    out_p = zarr.zeros(shape=(3, *feats.shape[1:]), chunks=(3, 16, 20, 40), dtype="f4")
    predict(z, model, card, out_labels=out_l, out_probabilities=out_p)
    labels, proba = predict(feats, model, card, block=(7, 40, 40))
    np.testing.assert_array_equal(out_l[...], labels)
    np.testing.assert_allclose(out_p[...], proba, atol=1e-6)


# --------------------------------------------------------------------------- bad annotations


def test_empty_annotation_refused(data):
    feats, _, ann = data
    with pytest.raises(InputError, match="empty_ann.tif.*no labelled voxels"):
        train([(feats, np.zeros_like(ann), "empty_ann.tif")], CLASSES, spec=SPEC, **FAST)


def test_class_without_voxels_named(data):
    feats, _, ann = data
    classes = {**CLASSES, "mitochondrion": 7}
    with pytest.raises(ValueError, match="'mitochondrion' \\(value 7\\) has no labelled voxels"):
        train([(feats, ann)], classes, spec=SPEC, **FAST)


def test_unknown_annotation_values_named(data):
    feats, _, ann = data
    bad = ann.copy()
    bad[0, 0, :3] = [9, 9, 42]
    with pytest.raises(InputError, match=r"scribbles.tif.*values \[9, 42\] are not classes"):
        train([(feats, bad, "scribbles.tif")], CLASSES, spec=SPEC, **FAST)


def test_shape_mismatch_names_both_shapes(data):
    feats, _, ann = data
    with pytest.raises(InputError, match=r"a.tif.*\(40, 40, 39\).*\(40, 40, 40\)"):
        train([(feats, ann[:, :, :39], "a.tif")], CLASSES, spec=SPEC, **FAST)


def test_feature_spec_mismatch_refused(data):
    feats, _, ann = data
    with pytest.raises(InputError, match="channels"):
        train([(feats, ann)], CLASSES, spec=FeatureSpec(), **FAST)


def test_bad_classes_and_estimator(data):
    feats, _, ann = data
    with pytest.raises(ValueError, match="0 means unlabelled"):
        train([(feats, ann)], {"ice": 0, "cytoplasm": 2}, spec=SPEC, **FAST)
    with pytest.raises(ValueError, match="unknown estimator"):
        train([(feats, ann)], CLASSES, spec=SPEC, estimator="svm", **FAST)


# --------------------------------------------------------------------------- model files


def test_save_load_round_trip(tmp_path, data, trained):
    feats, _, _ = data
    model, card = trained
    path = save_model(tmp_path / "model.skops", model, card)
    assert path.exists() and path.with_suffix(".json").exists()
    model2, card2 = load_model(path, spec=SPEC)
    assert card2 == card and list(card2["classes"]) == list(card["classes"])
    la, pa = predict(feats, model, card)
    lb, pb = predict(feats, model2, card2)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_array_equal(pa, pb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.skops"]


def test_load_refuses_untrusted_type(tmp_path, data, trained):
    import skops.io as sio

    feats, _, ann = data
    _, card = trained
    sneaky = SneakyForest(n_estimators=2, random_state=0).fit(feats[:, ann > 0].T, ann[ann > 0])
    path = tmp_path / "sneaky.skops"
    sio.dump(sneaky, path)
    path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="sneaky.skops.*SneakyForest"):
        load_model(path)
    # types skops trusts by default are refused too unless explicitly allowed
    from sklearn.svm import SVC

    svc = tmp_path / "svc.skops"
    sio.dump(SVC().fit(feats[:, ann > 0].T, ann[ann > 0]), svc)
    svc.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InputError, match="svc.skops.*sklearn.svm._classes.SVC"):
        load_model(svc)


def test_load_refuses_non_skops_and_missing(tmp_path):
    path = tmp_path / "notes.skops"
    path.write_text("this is not a model")
    with pytest.raises(InputError, match="notes.skops.*not a skops"):
        load_model(path)
    with pytest.raises(InputError, match="absent.skops"):
        load_model(tmp_path / "absent.skops")


def test_load_refuses_mismatched_spec_version_and_missing_card(tmp_path, trained):
    model, card = trained
    path = save_model(tmp_path / "m.skops", model, card)
    with pytest.raises(InputError, match="m.skops.*expects features"):
        load_model(path, spec=FeatureSpec())
    old = dict(card, sxtflow_version="0.0.1")
    path.with_suffix(".json").write_text(json.dumps(old))
    with pytest.raises(InputError, match="m.skops.*sxtflow 0.0.1"):
        load_model(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="m.json"):
        load_model(path)


def test_save_model_requires_skops_suffix(tmp_path, trained):
    model, card = trained
    with pytest.raises(ValueError, match=".skops"):
        save_model(tmp_path / "model.pkl", model, card)


# --------------------------------------------------------------------------- uncertainty


def test_uncertainty_margin():
    p = np.zeros((3, 1, 1, 4), np.float32)
    p[:, 0, 0, 0] = [1.0, 0.0, 0.0]
    p[:, 0, 0, 1] = [0.5, 0.5, 0.0]
    p[:, 0, 0, 2] = [0.1, 0.3, 0.6]
    p[:, 0, 0, 3] = [1 / 3, 1 / 3, 1 / 3]
    u = uncertainty(p)
    assert u.dtype == np.float32 and u.shape == (1, 1, 4)
    np.testing.assert_allclose(u[0, 0], [0.0, 1.0, 0.7, 1.0], atol=1e-6)
    with pytest.raises(ValueError):
        uncertainty(np.zeros((3, 4, 4)))


# --------------------------------------------------------------------------- fused prediction


@pytest.fixture(scope="module")
def lac_and_truth():
    return synthetic()


def test_predict_volume_equals_feature_store_path(data, trained, lac_and_truth):
    feats, _, _ = data
    lac, _ = lac_and_truth
    model, card = trained
    want_lab, want_p = predict(feats, model, card)
    probs = np.zeros_like(want_p)
    unc = np.zeros(lac.shape, np.float32)
    lab, p = predict_volume(
        lac, model, card, block=(16, 24, 40), out_probabilities=probs, out_uncertainty=unc,
        exact_probabilities=True,
    )  # fmt: skip
    assert p is probs
    np.testing.assert_array_equal(lab, want_lab)
    np.testing.assert_allclose(p, want_p, atol=1e-6)
    np.testing.assert_allclose(unc, uncertainty(want_p), atol=1e-6)
    # by default a voxel leaves the forest once its label is decided: the same labels
    early, _ = predict_volume(lac, model, card, block=(16, 24, 40))
    np.testing.assert_array_equal(early, want_lab)


def test_predict_volume_threads_and_mask(trained, lac_and_truth):
    lac, _ = lac_and_truth
    model, card = trained
    one, _ = predict_volume(lac, model, card, block=(16, 16, 16), n_jobs=1)
    two, none = predict_volume(lac, model, card, block=(16, 16, 16), n_jobs=2)
    assert none is None
    np.testing.assert_array_equal(one, two)
    assert model.n_jobs == FAST.get("n_jobs", 1)  # restored
    mask = np.zeros(lac.shape[1:], bool)
    mask[5:30, 5:30] = True
    masked, _ = predict_volume(lac, model, card, block=(16, 16, 16), mask=mask)
    np.testing.assert_array_equal(masked[:, mask], one[:, mask])
    assert not masked[:, ~mask].any()


def test_predict_volume_bad_input(trained, lac_and_truth):
    lac, _ = lac_and_truth
    model, card = trained
    with pytest.raises(ValueError, match="3D"):
        predict_volume(lac[0], model, card)
    bad = lac.copy()
    bad[3, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predict_volume(bad, model, card, block=(8, 8, 8))
    with pytest.raises(ValueError, match="out_labels"):
        predict_volume(lac, model, card, out_labels=np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="mask"):
        predict_volume(lac, model, card, mask=np.ones((3, 3), bool))
    other = dict(card, feature_spec=FeatureSpec(sigmas=(1.0,)).to_dict())
    other["feature_names"] = FeatureSpec(sigmas=(1.0,)).names()
    with pytest.raises(ValueError, match="features"):
        predict_volume(lac, model, other)


def test_slice_uncertainty_and_suggestions():
    unc = np.zeros((12, 4, 4), np.float32)
    lab = np.full((12, 4, 4), 2, np.uint8)
    lab[:, :2] = 1  # half of every slice is ice: not averaged
    unc[:, :2] = 1.0
    unc[4, 2:] = 0.9
    unc[5, 2:] = 0.8  # next to 4: skipped for the gap
    unc[9, 2:] = 0.4
    unc[1, 2:] = 0.6
    lab[11] = 1  # no cell
    score = slice_uncertainty(unc, lab)
    assert score[4] == pytest.approx(0.9) and score[0] == 0.0 and np.isnan(score[11])
    assert [z for z, _ in suggest_slices(unc, lab, n=3, min_gap=2)] == [4, 1, 9]
    ann = np.zeros_like(lab)
    ann[4, 3, 3] = 2  # slice 4 already annotated
    assert [z for z, _ in suggest_slices(unc, lab, n=2, min_gap=2, annotated=ann)] == [1, 9]
    with pytest.raises(ValueError, match="shape"):
        slice_uncertainty(unc[:3], lab)
    with pytest.raises(ValueError, match="shape"):
        suggest_slices(unc, lab, annotated=ann[:3])


def test_suggestions_follow_the_least_annotated_class():
    """A rare class's uncertain slices outrank a common class's more uncertain ones, and
    once one slice covers the rare class the next goes where another class is uncertain."""
    unc = np.full((30, 10, 10), 0.1, np.float32)
    lab = np.full((30, 10, 10), 2, np.uint8)  # cytoplasm everywhere
    lab[:, 0] = 1  # a row of ice in every slice
    for z in (6, 20):  # a thin class (9) in two slices, moderately uncertain around it
        lab[z, 5, 5] = 9
        unc[z, 3:8, 3:8] = 0.5
    unc[13] = 0.9  # the most uncertain slice on average: the common class only
    unc[13, 0] = 0.1
    common = {1: 5000, 2: 5000, 9: 5}  # annotated voxels per class value
    picks = suggest_slices(unc, lab, n=3, min_gap=3, annotated_voxels=common)
    assert [z for z, _ in picks][:2] in ([6, 20], [20, 6])  # the rare class first
    assert picks[2][0] == 13 and picks[0][1] > picks[1][1] > picks[2][1] > 0
    # by the uncertainty alone (every class annotated alike) the common slice comes first
    even = suggest_slices(unc, lab, n=1, annotated_voxels={1: 5000, 2: 5000, 9: 5000})
    assert even[0][0] == 13
    # the sum over the cell, not the mean: a cap of the cell with few voxels ranks low
    cap = np.full((3, 10, 10), 1, np.uint8)
    cap[0, 4:6, 4:6] = 2  # 4 voxels of cell, all very uncertain
    cap[2, 1:, :] = 2  # 90 voxels, half as uncertain
    u = np.where(cap[:1] == 2, 1.0, 0.0).astype(np.float32)
    u = np.concatenate(
        [u, np.zeros((1, 10, 10), np.float32), np.full((1, 10, 10), 0.5, np.float32)]
    )
    assert slice_uncertainty(u, cap)[0] > slice_uncertainty(u, cap)[2]
    assert suggest_slices(u, cap, n=1, min_gap=1)[0][0] == 2


def test_class_slice_uncertainty_grows_each_class_in_plane():
    unc = np.ones((2, 9, 9), np.float32)
    lab = np.full((2, 9, 9), 2, np.uint8)
    lab[0, 4, 4] = 9
    got = class_slice_uncertainty(unc, lab, [9, 2], reach=2)
    assert got[0].tolist() == [13.0, 0.0]  # the disk of radius 2 around the voxel
    assert got[1].tolist() == [81.0, 81.0]
    assert class_slice_uncertainty(unc, lab, [9], reach=0)[0].tolist() == [1.0, 0.0]


def test_class_slice_uncertainty_equals_the_dilation_of_whole_slices():
    # each class is dilated in its box grown by the reach: the same sums as dilating
    # whole slices, for objects at the borders and in the middle
    from scipy import ndimage as ndi

    rng = np.random.default_rng(5)
    unc = rng.random((7, 20, 23)).astype(np.float32)
    lab = np.full(unc.shape, 2, np.uint8)
    lab[rng.random(unc.shape) < 0.01] = 9
    lab[:, 0, 5] = lab[3, 10, 22] = lab[6, 19, 0] = 9
    lab[2, 5:8, 5:8] = 4
    disk = np.zeros((1, 5, 5), bool)
    disk[0] = np.hypot(*np.mgrid[-2:3, -2:3]) <= 2
    got = class_slice_uncertainty(unc, lab, [9, 4, 2], reach=2, slab=3)
    for k, v in enumerate([9, 4, 2]):
        near = ndi.binary_dilation(lab == v, disk)
        want = np.where(near, unc.astype(np.float64), 0.0).sum(axis=(1, 2))
        np.testing.assert_array_equal(got[k], want)


def test_predict_volume_threads_into_zarr_need_aligned_chunks(trained, lac_and_truth):
    zarr = pytest.importorskip("zarr")
    lac, _ = lac_and_truth
    model, card = trained
    out = zarr.zeros(shape=lac.shape, chunks=(10, 10, 10), dtype="u1")
    with pytest.raises(ValueError, match="do not tile the block"):
        predict_volume(lac, model, card, block=(16, 16, 16), n_jobs=2, out_labels=out)
    predict_volume(lac, model, card, block=(20, 20, 20), n_jobs=2, out_labels=out)
    want, _ = predict_volume(lac, model, card, block=(20, 20, 20))
    np.testing.assert_array_equal(out[...], want)
