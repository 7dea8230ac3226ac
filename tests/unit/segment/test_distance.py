"""Tests of refinement's distance transforms and of the boundary step on threads."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from sxtflow.segment import snap_boundaries
from sxtflow.segment._distance import distance_um


@pytest.mark.parametrize("spacing", [(0.04, 0.04, 0.04), (0.06, 0.025, 0.03)])
def test_distance_um_is_scipys_euclidean_distance_in_um(spacing):
    mask = np.random.default_rng(3).random((17, 23, 19)) > 0.1  # sparse background
    mask[8, :, :] = True  # long distances along one axis too
    got = distance_um(mask, spacing)
    want = ndi.distance_transform_edt(mask, sampling=spacing)
    assert got.dtype == np.float32 and got.shape == mask.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert (got[~mask] == 0).all()


@pytest.mark.parametrize("spacing", [(0.025, 0.025, 0.025), (0.06, 0.025, 0.03)])
def test_distance_um_gives_edts_own_distances_bit_for_bit(spacing):
    # distance_um hands edt a uint8 view of the mask (cheaper than its bool path): the
    # refined labels depend on exact ties (``d <= 2 * vox``), so the distances must be
    # the very same floats, not merely close
    import edt

    smooth = ndi.gaussian_filter(np.random.default_rng(5).random((21, 26, 30)), 1.5)
    for p in (0.05, 0.5, 0.95):  # blobs of background, half and half, specks of it
        mask = smooth > np.quantile(smooth, p)
        want = edt.edt(mask, anisotropy=spacing, black_border=False, parallel=1)
        got = distance_um(mask, spacing)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want)


def test_distance_um_refuses_what_is_not_a_volume():
    with pytest.raises(ValueError, match="3D mask"):
        distance_um(np.ones((4, 4), bool), (0.04, 0.04))
    assert distance_um(np.ones((0, 3, 3), bool), (0.04,) * 3).shape == (0, 3, 3)


def _balls(n=12, seed=0):
    """Labels of ``n`` blurred balls (class 8) in cytoplasm (2), each seeded a voxel small,
    and the tomogram: more objects than one group of the boundary step (8)."""
    rng = np.random.default_rng(seed)
    shape = (24, 40, 84)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(float)
    truth = np.zeros(shape, bool)
    seed_mask = np.zeros(shape, bool)
    for i in range(n):
        c = (12 + rng.uniform(-2, 2), 10 + 20 * (i % 2), 8 + 12 * (i // 2))
        r = rng.uniform(3.5, 5.0)
        d = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
        truth |= d <= r
        seed_mask |= d <= r - 1
    lac = ndi.gaussian_filter(np.where(truth, 0.5, 0.2), 1.0)
    lac = (lac + rng.normal(0, 0.01, shape)).astype(np.float32)
    return np.where(seed_mask, 8, 2).astype(np.uint8), lac, truth


def test_snap_gives_the_same_labels_on_any_number_of_threads():
    labels, lac, truth = _balls()
    one, two = labels.copy(), labels.copy()
    n1 = snap_boundaries(one, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0, threads=1)
    n2 = snap_boundaries(two, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0, threads=2)
    assert n1 == n2 > 0
    np.testing.assert_array_equal(one, two)
    # and the step did its work on every ball (a wave that lost its results would not)
    got = one == 8
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.9


def test_the_vote_along_the_surface_is_the_majority_of_its_layer():
    # _pool_in_layers: one Gaussian per layer in the layer's box, against the definition
    # (the Gaussian-weighted fraction of ``above`` among the layer's voxels > 1/2)
    from sxtflow.segment._boundary import _pool_in_layers

    rng = np.random.default_rng(5)
    z, y, x = np.mgrid[:48, :50, :52] - np.array([20.5, 24.5, 27.5])[:, None, None, None]
    signed = np.sqrt(z**2 + y**2 + x**2) - 7.0  # a ball's signed distance (voxels)
    layer = np.rint(signed).astype(np.int16)
    region = np.abs(signed) <= 3  # the layers' boxes lie inside the array
    above = rng.random(layer.shape) < 0.5 + 0.08 * np.sign(z)  # more above on one side
    sigma = (2.0, 1.5, 2.5)
    want = np.zeros(layer.shape, bool)
    for k in np.unique(layer[region]):
        lay = region & (layer == k)
        num = ndi.gaussian_filter((above & lay).astype(np.float64), sigma)
        den = ndi.gaussian_filter(lay.astype(np.float64), sigma)
        want[lay] = num[lay] / den[lay] > 0.5
    got = _pool_in_layers(above, layer, region, sigma)
    assert not got[~region].any()
    assert 0.2 < want[region].mean() < 0.8  # both answers occur
    np.testing.assert_array_equal(got, want)


def test_superlevel_is_the_level_with_the_given_volume():
    from sxtflow.segment._boundary import _superlevel

    model = np.random.default_rng(2).random((7, 8, 9)).astype(np.float32)
    flat = np.sort(model.ravel())[::-1]
    for n in (1, 10, 250, model.size - 1, model.size + 5):
        m = min(max(n, 1), model.size - 1)
        assert _superlevel(model, n) == 0.5 * float(flat[m - 1] + flat[m])
        assert np.count_nonzero(model > _superlevel(model, n)) == m


def test_snap_in_forked_processes_gives_the_labels_of_one_thread(monkeypatch):
    # the groups in worker processes (as a nucleus's tiles at 512³): the same labels
    import sxtflow.segment._boundary as boundary

    if not boundary._can_fork():
        pytest.skip("worker processes are forked on Linux only (elsewhere: threads)")
    labels, lac, _ = _balls(n=10, seed=1)
    one, forked = labels.copy(), labels.copy()
    n1 = snap_boundaries(one, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0, threads=1)
    calls = []
    fork = boundary._fork_pool
    monkeypatch.setattr(boundary, "_fork_pool", lambda *a: calls.append(1) or fork(*a))
    n2 = snap_boundaries(forked, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0, threads=2)
    assert len(calls) == 1  # 10 balls, two groups: one pool of workers, forked once
    assert n1 == n2 > 0
    np.testing.assert_array_equal(one, forked)


@pytest.mark.parametrize("sigma", [2.0, (1.0, 2.5, 0.0)])
def test_gaussian_at_is_the_gaussian_where_kept_bit_for_bit(sigma):
    from sxtflow.segment._boundary import _gaussian_at

    a = np.random.default_rng(4).random((21, 30, 26)).astype(np.float32)
    for keep in [
        (slice(0, 21), slice(0, 30), slice(0, 26)),
        (slice(5, 9), slice(0, 7), slice(11, 26)),
    ]:
        want = ndi.gaussian_filter(a, sigma)[keep]
        got = _gaussian_at(a, sigma, keep)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_objects_snapped_ahead_are_taken_only_with_the_same_inputs(monkeypatch):
    # _ahead snaps a class on the labels as they are and keeps each result with its
    # inputs; snap_boundaries takes a result only where object and box are unchanged
    import threading

    import sxtflow.segment._boundary as boundary

    labels, lac, _ = _balls(n=6, seed=2)
    spacing = (0.04,) * 3
    want = labels.copy()
    snap_boundaries(want, lac, 8, spacing, band_um=0.08, blur_vox=1.0)
    memo = boundary._ahead(labels.copy(), lac, spacing, 1.0, [(8, 0.08)], threading.Event())
    assert len(memo) == 6
    calls = []
    rounds = boundary._Snap.rounds
    monkeypatch.setattr(boundary._Snap, "rounds", lambda *a: calls.append(1) or rounds(*a))
    got = labels.copy()
    snap_boundaries(got, lac, 8, spacing, band_um=0.08, blur_vox=1.0, memo=memo)
    assert not calls  # every object taken from the memo
    np.testing.assert_array_equal(got, want)
    # a voxel changed in one ball's box (as an earlier class's step would): that ball is
    # snapped again, the others are taken
    changed = labels.copy()
    changed[12, 10, 2] = 4
    want = changed.copy()
    snap_boundaries(want, lac, 8, spacing, band_um=0.08, blur_vox=1.0)
    calls.clear()
    got = changed.copy()
    snap_boundaries(got, lac, 8, spacing, band_um=0.08, blur_vox=1.0, memo=memo)
    assert len(calls) == 1
    np.testing.assert_array_equal(got, want)
    # other parameters: nothing taken
    calls.clear()
    snap_boundaries(labels.copy(), lac, 8, spacing, band_um=0.12, blur_vox=1.0, memo=memo)
    assert len(calls) == 6


def test_refine_with_workers_and_classes_snapped_ahead_gives_the_labels_of_one_thread():
    from sxtflow.segment import refine_labels

    labels, lac, _ = _balls(n=8, seed=3)
    # a large low-contrast object (class 4) snapped first, then the balls
    z, y, x = np.mgrid[:24, :40, :84]
    big = (x > 60) & (np.abs(z - 12) < 9) & (np.abs(y - 20) < 15)
    labels[big & (labels == 2)] = 4
    lac = lac + np.where(big, 0.05, 0).astype(np.float32)
    classes = {"cytoplasm": 2, "nucleus": 4, "lipid_droplet": 8}
    rules = {"nucleus": {"boundary_um": 0.08}, "lipid_droplet": {"boundary_um": 0.08}}
    one = refine_labels(labels, classes, (0.04,) * 3, rules, lac=lac, threads=1)
    two = refine_labels(labels, classes, (0.04,) * 3, rules, lac=lac, threads=2)
    assert (one != labels).any()
    np.testing.assert_array_equal(one, two)
