"""Tests for the fast prediction paths of sxtflow.segment: only the features the model
reads, and coarse-to-fine (a lattice first, full resolution where the answer is not
confident or is near a class boundary). Each is checked against the full path (every
voxel, every feature)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from sxtflow.segment import (
    FeatureSpec,
    _coarse,
    block_features,
    coarse_pass,
    compute_features,
    fine_cells,
    predict_volume,
    subset_spec,
    train,
    used_features,
)
from sxtflow.segment._coarse import _conv_at, _lattice, _lattice_features
from sxtflow.segment._filters import gaussian_kernel

CLASSES = {"ice": 1, "cytoplasm": 2, "lipid_droplet": 3}
SPEC = FeatureSpec(
    sigmas=(0.7, 1.6), families=("gaussian", "log", "ggm", "dog", "hessian"),
    family_sigmas={"gaussian": (0.7, 1.6, 3.0)},
)  # fmt: skip


def cell_in_ice(n=48, seed=0):
    """A cytoplasm ball holding a droplet in a box of ice (LAC µm⁻¹ with noise), truth."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:n, :n, :n]
    truth = np.full((n, n, n), CLASSES["ice"], np.uint8)
    c = n / 2
    truth[(z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 < (0.22 * n) ** 2] = CLASSES["cytoplasm"]
    truth[(z - c) ** 2 + (y - c - 2) ** 2 + (x - c) ** 2 < (0.08 * n) ** 2] = 3
    lac = np.choose(truth, [0.0, 0.1, 0.3, 0.6]).astype(np.float32)
    lac += rng.normal(0.0, 0.05, lac.shape).astype(np.float32)
    return lac, truth


@pytest.fixture(scope="module")
def lac_truth():
    return cell_in_ice()


@pytest.fixture(scope="module")
def model_card(lac_truth):
    lac, truth = lac_truth
    ann = np.zeros_like(truth)
    for zz in (18, 24, 30):
        ann[zz, ::3, ::2] = truth[zz, ::3, ::2]
    feats = compute_features(lac, SPEC)
    return train([(feats, ann)], CLASSES, spec=SPEC, n_estimators=12, cv_folds=0, seed=1)


@pytest.fixture(scope="module")
def full(lac_truth, model_card):
    lac, _ = lac_truth
    model, card = model_card
    p = np.zeros((3, *lac.shape), np.float32)
    lab, _ = predict_volume(
        lac, model, card, block=(16, 24, 48), out_probabilities=p, feature_subset=False
    )
    return lab, p


# --------------------------------------------------------------------------- feature subset


def test_used_features_of_a_forest_and_a_stump():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    y = (X[:, 3] > 0).astype(int)
    from sklearn.ensemble import RandomForestClassifier

    stump = RandomForestClassifier(n_estimators=4, max_depth=1, max_features=None).fit(X, y)
    assert used_features(stump, 5).tolist() == [False, False, False, True, False]
    deep = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, rng.integers(0, 2, 200))
    assert used_features(deep, 5).all()


def test_subset_spec_keeps_whole_families_per_scale():
    names = SPEC.names()
    used = np.zeros(len(names), bool)
    used[names.index("hessian_ev1_s1.6")] = True
    used[names.index("gaussian_s3")] = True
    sub, cols = subset_spec(SPEC, used)
    assert sub.names() == ["gaussian_s3", *(f"hessian_ev{i}_s1.6" for i in range(3))]
    assert [names[c] for c in cols] == sub.names()
    with pytest.raises(ValueError):
        subset_spec(SPEC, used[:-1])


def test_subset_features_equal_the_full_features_exactly(lac_truth):
    lac, _ = lac_truth
    names = SPEC.names()
    used = np.zeros(len(names), bool)
    used[[names.index("ggm_s0.7"), names.index("raw"), names.index("dog_s1.6")]] = True
    sub, cols = subset_spec(SPEC, used)
    core = (slice(3, 20), slice(10, 40), slice(0, 48))
    np.testing.assert_array_equal(
        block_features(lac, core, sub), block_features(lac, core, SPEC)[cols]
    )


def test_feature_subset_gives_identical_probabilities(lac_truth):
    lac, truth = lac_truth
    feats = compute_features(lac, SPEC)
    ann = np.zeros_like(truth)
    ann[24, ::2, ::2] = truth[24, ::2, ::2]
    # shallow trees read only a few of the features
    model, card = train([(feats, ann)], CLASSES, spec=SPEC, n_estimators=3, max_depth=2, cv_folds=0)
    assert not used_features(model, SPEC.n_features).all()
    out = []
    for subset in (True, False):
        p = np.zeros((3, *lac.shape), np.float32)
        lab, _ = predict_volume(
            lac, model, card, block=(16, 16, 48), out_probabilities=p, feature_subset=subset
        )
        out.append((lab, p))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])


# --------------------------------------------------------------------------- coarse to fine


def test_lattice_features_equal_block_features_at_lattice_points(lac_truth):
    lac, _ = lac_truth
    zp, yp, xp = (_lattice(n, 4) for n in lac.shape)
    want = compute_features(lac, SPEC)[np.ix_(range(SPEC.n_features), zp[2:6], yp, xp)]
    got = _lattice_features(lac, SPEC, zp[2:6], yp, xp)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert _lattice(10, 4).tolist() == [2, 6, 9]


@pytest.mark.parametrize("chunk", [3, 32])
def test_conv_at_equals_scipy_at_the_positions_along_every_axis(monkeypatch, chunk):
    # several kernels in one product, each product over the window of its positions
    monkeypatch.setattr(_coarse, "_CHUNK", chunk)
    a = np.random.default_rng(3).random((30, 34, 38)).astype(np.float32)
    kernels = [gaussian_kernel(1.6, order) for order in (0, 1, 2)]
    r = (len(kernels[0]) - 1) // 2
    for axis in range(3):
        pos = np.arange(r, a.shape[axis] - r, 2)
        got = _conv_at(a, kernels, axis, pos)
        for k, g in zip(kernels, got, strict=True):
            want = np.take(ndi.convolve1d(a, k, axis=axis, output=np.float64), pos, axis=axis)
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_fine_cells_grow_the_unsure_cells():
    p = np.zeros((2, 5, 5, 5), np.float32)
    p[0] = 1.0  # confidently ice everywhere …
    p[:, 2, 2, 2] = (0.6, 0.4)  # … but one point
    p[:, 0, 0, 0] = 0.0  # outside the mask: never classified here
    cells = fine_cells(p, confident=0.9, margin=1)
    assert cells.sum() == 27 and cells[1:4, 1:4, 1:4].all()
    assert fine_cells(p, confident=0.9, margin=0).sum() == 1
    assert not fine_cells(p, confident=0.55).any()
    with pytest.raises(ValueError, match="confident"):
        fine_cells(p, confident=0.5)


def test_fine_cells_cover_both_sides_of_a_class_boundary():
    p = np.zeros((3, 6, 6, 6), np.float32)
    p[1] = 1.0  # confident cytoplasm …
    p[:, :, :, 3:] = np.array([0, 0, 1], np.float32)[:, None, None, None]  # … beside a droplet
    p[:, 0, 0, 0] = 0.0  # outside the mask agrees with anything
    cells = fine_cells(p, confident=0.9, margin=1)
    want = np.zeros((6, 6, 6), bool)
    want[:, :, 2:4] = True  # confident on both sides, but the neighbours disagree
    np.testing.assert_array_equal(cells, want)
    # every class may take the coarse answer far from a boundary, not only ice
    assert not cells[:, :, 0].any() and not cells[:, :, 5].any()


def test_coarse_to_fine_equals_the_full_prediction(lac_truth, model_card, full):
    lac, _ = lac_truth
    model, card = model_card
    for stride in (2, 4):
        p = np.zeros((3, *lac.shape), np.float32)
        lab, _ = predict_volume(
            lac, model, card, block=(16, 24, 48), coarse=stride, out_probabilities=p
        )
        np.testing.assert_array_equal(lab, full[0])
    # the cell and its surroundings were computed at full resolution: same probabilities
    cp = coarse_pass(lac, model, card, stride=4)
    # slabs of lattice planes on two threads: the same lattice, bit for bit
    one = coarse_pass(lac, model, card, stride=4, slab=2)
    np.testing.assert_array_equal(coarse_pass(lac, model, card, stride=4, slab=2, n_jobs=2), one)
    np.testing.assert_allclose(one, cp, rtol=0, atol=1e-6)
    cells = fine_cells(cp)
    idx = np.ix_(*(np.arange(n) // 4 for n in lac.shape))
    fine = cells[idx]
    assert 0 < fine.mean() < 0.8  # the ice far from the cell was skipped
    np.testing.assert_array_equal(p[:, fine], full[1][:, fine])


def test_feature_boxes_in_parts_of_a_block_give_the_same_answer(
    lac_truth, model_card, full, monkeypatch
):
    # each part of a block gets the box of its own voxels to classify (fewer ice voxels
    # filtered around a cell's rim): probabilities equal the full prediction's exactly
    from sxtflow.segment import _predict

    lac, _ = lac_truth
    model, card = model_card
    monkeypatch.setattr(_predict, "_FEATURE_BOX", (5, 7, 9))
    p = np.zeros((3, *lac.shape), np.float32)
    lab, _ = predict_volume(
        lac, model, card, block=(16, 24, 48), coarse=2, out_probabilities=p, n_jobs=2,
        coarse_classes=None,
    )  # fmt: skip
    np.testing.assert_array_equal(lab, full[0])
    cp = coarse_pass(lac, model, card, stride=2)
    cells = fine_cells(cp)[np.ix_(*(np.arange(n) // 2 for n in lac.shape))]
    assert cells.any() and not cells.all()
    np.testing.assert_array_equal(p[:, cells], full[1][:, cells])


def test_confident_cells_keep_their_class_and_changed_voxels_are_near_a_boundary(
    lac_truth, model_card, full
):
    lac, _ = lac_truth
    model, card = model_card
    # a loose setting (no margin, a low confidence bar) so that the coarse pass decides
    # more: every voxel it decides takes its lattice point's class, and every voxel that
    # differs from the full prediction lies within one lattice cell of a voxel the full
    # prediction gives that class (a boundary the lattice misplaced, nothing invented)
    stride = 4
    lab, _ = predict_volume(
        lac, model, card, block=(16, 24, 48), coarse=stride, coarse_confident=0.55,
        coarse_margin=0, coarse_classes=None,
    )  # fmt: skip
    cp = coarse_pass(lac, model, card, stride=stride)
    idx = np.ix_(*(np.arange(n) // stride for n in lac.shape))
    fine = fine_cells(cp, confident=0.55, margin=0)[idx]
    coarse_class = np.array(sorted(CLASSES.values()), np.uint8)[cp.argmax(axis=0)][idx]
    np.testing.assert_array_equal(lab[~fine], coarse_class[~fine])
    changed = lab != full[0]
    assert not changed[fine].any()
    for value in CLASSES.values():
        near = ndi.binary_dilation(
            full[0] == value, structure=np.ones((3, 3, 3), bool), iterations=stride
        )
        assert near[changed & (lab == value)].all()
    # everything the full prediction calls the droplet's core is found
    core = ndi.binary_erosion(full[0] == 3, iterations=1)
    assert (lab[core] == 3).all()


def test_coarse_to_fine_with_a_mask_and_threads(lac_truth, model_card, full):
    lac, _ = lac_truth
    model, card = model_card
    mask = np.zeros(lac.shape[1:], bool)
    mask[4:44, 6:46] = True
    lab, _ = predict_volume(lac, model, card, block=(16, 24, 24), coarse=4, mask=mask, n_jobs=2)
    np.testing.assert_array_equal(lab[:, mask], full[0][:, mask])
    assert not lab[:, ~mask].any()


def test_a_tube_thinner_than_the_lattice_survives():
    """A mitochondrion-like tube of radius 2 voxels running between the lattice points of
    stride 4 (no lattice point inside it) through confident cytoplasm: the default
    (only ice keeps the coarse answer) classifies the cytoplasm at full resolution, so
    every voxel keeps the full answer."""
    rng = np.random.default_rng(3)
    n = 40
    z, y, x = np.mgrid[:n, :n, :n]
    truth = np.full((n, n, n), 2, np.uint8)  # cytoplasm
    truth[:, :, :6] = 1  # ice at one side
    tube = (z - 20) ** 2 + (y - 20) ** 2 <= 4  # along x, centred between lattice points
    truth[tube & (x >= 6)] = 4
    assert not tube[np.ix_(_lattice(n, 4), _lattice(n, 4), _lattice(n, 4))].any()
    lac = np.choose(truth, [0.0, 0.05, 0.3, 0.0, 0.55]).astype(np.float32)
    lac += rng.normal(0.0, 0.03, lac.shape).astype(np.float32)
    lac = ndi.gaussian_filter(lac, 0.7)  # the zone plate's blur
    ann = np.zeros_like(truth)
    ann[[8, 20, 32], ::2, ::2] = truth[[8, 20, 32], ::2, ::2]
    ann[:, 20, ::2] = truth[:, 20, ::2]
    classes = {"ice": 1, "cytoplasm": 2, "mitochondrion": 4}
    model, card = train(
        [(compute_features(lac, SPEC), ann)], classes, spec=SPEC, n_estimators=12,
        cv_folds=0, seed=1,
    )  # fmt: skip
    full, _ = predict_volume(lac, model, card, block=(20, 20, 40))
    assert (full[tube & (x >= 8)] == 4).mean() > 0.9  # the model does find the tube
    lab, _ = predict_volume(lac, model, card, block=(20, 20, 40), coarse=4)
    np.testing.assert_array_equal(lab, full)
    cp = coarse_pass(lac, model, card, stride=4)
    # the lattice points beside the tube are confidently cytoplasm (correctly): no bar on
    # the confidence would send the tube to full resolution if cytoplasm kept its answer
    beside = cp[1][np.ix_([4, 5], [4, 5], range(2, 10))]
    assert (beside > 0.9).all()


# --------------------------------------------------------------------------- wide channels


def test_wide_scales_are_the_band_limited_gaussians_that_set_the_halo():
    from sxtflow.segment import wide_scales

    spec = FeatureSpec(
        sigmas=(0.7, 1.6), families=("gaussian", "ggm"),
        family_sigmas={"gaussian": (0.7, 1.6, 5.0, 8.0)},
    )  # fmt: skip
    assert wide_scales(spec, 2) == (5.0, 8.0)
    assert wide_scales(spec, 3) == (8.0,)  # σ = 5 < 2·3 is not band-limited enough
    assert wide_scales(spec, 0) == ()
    # a scale with derivatives is never taken from the lattice, nor one no wider than them
    assert wide_scales(FeatureSpec(sigmas=(1.0, 8.0), families=("gaussian", "ggm")), 2) == ()
    same = FeatureSpec(sigmas=(5.0,), families=("gaussian", "ggm"),
                       family_sigmas={"gaussian": (5.0, 4.5)})  # fmt: skip
    assert wide_scales(same, 2) == ()


@pytest.mark.parametrize("stride", [2, 3])
def test_wide_channels_equal_the_exact_filter_to_float_precision(stride):
    from sxtflow.segment import WideChannels

    rng = np.random.default_rng(stride)
    vol = ndi.gaussian_filter(rng.normal(0.2, 0.05, (37, 29, 44)), 1.0).astype(np.float32)
    vol += rng.normal(0.0, 0.02, vol.shape).astype(np.float32)  # and some noise
    spec = FeatureSpec(sigmas=(6.0,), families=("gaussian",), include_raw=False)
    exact = compute_features(vol, spec, block=vol.shape)[0]
    wide = WideChannels(vol, (6.0,), stride=stride, n_jobs=2)
    for box in (
        (slice(0, 37), slice(0, 29), slice(0, 44)),  # every border
        (slice(5, 6), slice(11, 20), slice(40, 44)),
    ):
        got = wide.box(box)[0]
        assert got.shape == exact[box].shape
        np.testing.assert_allclose(got, exact[box], rtol=0, atol=2e-6)
    with pytest.raises(ValueError, match="2·stride"):
        WideChannels(vol, (3.0,), stride=2)


@pytest.fixture(scope="module")
def wide_model(lac_truth):
    lac, truth = lac_truth
    spec = FeatureSpec(
        sigmas=(0.7, 1.6), families=("gaussian", "ggm", "hessian"),
        family_sigmas={"gaussian": (0.7, 1.6, 5.0)},
    )  # fmt: skip
    ann = np.zeros_like(truth)
    for zz in (14, 24, 34):
        ann[zz, ::3, ::2] = truth[zz, ::3, ::2]
    return train([(compute_features(lac, spec), ann)], CLASSES, spec=spec, n_estimators=12,
                 cv_folds=0, seed=2)  # fmt: skip


def test_wide_channels_from_the_lattice_change_only_voxels_at_a_split(lac_truth, wide_model):
    # the σ = 5 smoothing (halo 20, the others 7) from every 2nd voxel: probabilities equal
    # to float32 rounding, and a label can differ only where one of the trees splits on
    # that channel within the interpolation error of the voxel's exact value
    lac, _ = lac_truth
    model, card = wide_model
    exact_p = np.zeros((3, *lac.shape), np.float32)
    exact, _ = predict_volume(
        lac, model, card, block=(16, 24, 48), out_probabilities=exact_p, wide_stride=None
    )
    assert len(np.unique(exact)) == 3
    col = card["feature_names"].index("gaussian_s5")
    g5 = block_features(lac, (slice(0, 48),) * 3, FeatureSpec(
        sigmas=(5.0,), families=("gaussian",), include_raw=False))[0]  # fmt: skip
    thresholds = np.concatenate(
        [e.tree_.threshold[e.tree_.feature == col] for e in model.estimators_]
    )
    for coarse in (None, 4):
        p = np.zeros_like(exact_p)
        lab, _ = predict_volume(
            lac, model, card, block=(16, 24, 48), out_probabilities=p, coarse=coarse, n_jobs=2
        )
        changed = np.flatnonzero(lab != exact)
        assert changed.size <= 3  # of 110 592
        for i in changed:
            assert np.abs(thresholds - g5.flat[i]).min() < 2e-6
        if coarse is None:
            moved = np.abs(p - exact_p).max(axis=0) > 1e-6
            assert moved.sum() <= 3
            for i in np.flatnonzero(moved):
                assert np.abs(thresholds - g5.flat[i]).min() < 2e-6


def test_early_exit_and_coarse_to_fine_keep_the_exact_labels(lac_truth, model_card, full):
    """Every shortcut on (the defaults and coarse-to-fine) against every tree for every
    voxel at every feature: the same labels."""
    lac, _ = lac_truth
    model, card = model_card
    exact, _ = predict_volume(
        lac, model, card, block=(16, 24, 48), feature_subset=False, exact_probabilities=True
    )
    np.testing.assert_array_equal(full[0], exact)
    fast, _ = predict_volume(lac, model, card, block=(16, 24, 48), coarse=2)
    np.testing.assert_array_equal(fast, exact)


def test_feature_boxes_hold_every_fine_voxel():
    from sxtflow.segment._predict import _FEATURE_BOX, _feature_boxes

    rng = np.random.default_rng(0)
    shape = (2 * _FEATURE_BOX[0], 2 * _FEATURE_BOX[1], 2 * _FEATURE_BOX[2])
    corners = np.zeros(shape, bool)
    corners[:3, :3, :3] = corners[-3:, -3:, -3:] = True  # two far corners: one box each
    dense = rng.random(shape) < 0.5  # one box per part
    for fine, n_boxes in ((corners, 2), (dense, 8)):
        boxes = _feature_boxes(fine)
        assert len(boxes) == n_boxes
        covered = np.zeros(shape, bool)
        for b in boxes:
            covered[b] = True
        assert not (fine & ~covered).any()
    assert _feature_boxes(corners[:3, :3, :3]) == [(slice(0, 3),) * 3]
    assert _feature_boxes(np.zeros(shape, bool)) == []
    assert _feature_boxes(corners, split=False) == [tuple(slice(0, n) for n in shape)]
