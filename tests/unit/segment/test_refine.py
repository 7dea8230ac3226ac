"""Tests of the refinement rules and the boundary step."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from sxtflow.segment import estimate_blur, estimate_blur_axes, refine_labels, snap_boundaries

CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "vacuole": 7, "lipid_droplet": 8}
SP = (0.1, 0.1, 0.1)  # µm: one voxel = 0.001 µm³


def cell():
    lab = np.full((30, 30, 30), 2, np.uint8)
    lab[:, :, :2] = 1
    lab[5:15, 5:15, 5:15] = 4  # nucleus, 1 µm³
    return lab


def test_specks_below_min_volume_take_the_surrounding_label():
    lab = cell()
    lab[20:22, 20:22, 20:22] = 7  # 8 voxels = 0.008 µm³
    lab[24:28, 20:24, 20:24] = 7  # 64 voxels = 0.064 µm³
    out = refine_labels(lab, CLASSES, SP, {"vacuole": {"min_volume_um3": 0.02}})
    assert (out[20:22, 20:22, 20:22] == 2).all()
    assert (out[24:28, 20:24, 20:24] == 7).all()
    assert (out[5:15, 5:15, 5:15] == 4).all()


def test_max_objects_keeps_the_largest_and_fill_holes():
    lab = cell()
    lab[20:23, 20:23, 20:23] = 4  # a second, smaller "nucleus"
    lab[9:11, 9:11, 9:11] = 8  # a hole of another class inside the nucleus
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"max_objects": 1, "fill_holes": True}})
    assert (out[20:23, 20:23, 20:23] == 2).all()
    assert (out[5:15, 5:15, 5:15] == 4).all()
    assert out.dtype == np.uint8 and lab[9, 9, 9] == 8  # input untouched


def test_rules_for_absent_classes_are_ignored_and_bad_keys_refused():
    lab = cell()
    np.testing.assert_array_equal(refine_labels(lab, CLASSES, SP, {"mitochondrion": {}}), lab)
    with pytest.raises(ValueError, match="unknown refine keys for 'nucleus'"):
        refine_labels(lab, CLASSES, SP, {"nucleus": {"min_size": 3}})


def test_no_data_voxels_stay_zero():
    lab = cell()
    lab[0] = 0
    lab[1, 0, 0] = 4
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"max_objects": 1}})
    assert (out[0] == 0).all() and out[1, 0, 0] != 4


def test_piece_mostly_inside_another_class_joins_it():
    lab = cell()
    lab[8:11, 5:8, 8:11] = 9  # a dense crescent at the nucleus' edge, read as mitochondrion
    lab[20:23, 20:23, 20:23] = 9  # a real mitochondrion in the cytoplasm
    classes = {**CLASSES, "mitochondrion": 9}
    out = refine_labels(lab, classes, SP, {"mitochondrion": {"inside": "nucleus"}})
    assert (out[8:11, 5:8, 8:11] == 4).all()
    assert (out[20:23, 20:23, 20:23] == 9).all()


def _balls(centres, r, shape=(24, 24, 48)):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    m = np.zeros(shape, bool)
    for cz, cy, cx in centres:
        m |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    return m


def test_separate_instances_splits_touching_balls_only():
    from sxtflow.segment import separate_instances

    sp = (0.05, 0.05, 0.05)
    two = _balls([(12, 12, 12), (12, 12, 27)], 8)  # overlapping by 1 voxel: one component
    assert separate_instances(two, sp).max() == 1
    inst = separate_instances(two, sp, min_radius_um=0.25)
    assert inst.max() == 2
    sizes = np.bincount(inst.ravel())[1:]
    assert abs(int(sizes[0]) - int(sizes[1])) <= 0.05 * sizes.mean()  # split in the middle
    assert inst[12, 12, 12] != inst[12, 12, 27]
    one = _balls([(12, 12, 20)], 8)
    assert separate_instances(one, sp, min_radius_um=0.25).max() == 1
    # a speck is dropped by volume (1 voxel = 1.25e-4 µm³), objects numbered 1..n
    speck = one.copy()
    speck[0, 0, 0] = True
    assert separate_instances(speck, sp).max() == 2
    kept = separate_instances(speck, sp, min_volume_um3=0.01)
    assert kept.max() == 1 and kept[0, 0, 0] == 0


def test_separate_instances_bad_input():
    from sxtflow.segment import separate_instances

    with pytest.raises(ValueError, match="3D"):
        separate_instances(np.ones((4, 4), bool), (0.1, 0.1, 0.1))
    with pytest.raises(ValueError, match="spacing_um"):
        separate_instances(np.ones((4, 4, 4), bool), (0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match="min_radius_um"):
        separate_instances(np.ones((4, 4, 4), bool), (0.1, 0.1, 0.1), min_radius_um=-1)


def test_smooth_radius_removes_spurs_thinner_than_the_ball_in_microns():
    z, y, x = np.mgrid[:30, :30, :30]
    lab = np.full((30, 30, 30), 2, np.uint8)
    lab[:, :, :2] = 1
    body = (z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 8**2  # r = 0.8 µm
    lab[body] = 4
    spur = np.zeros_like(body)
    spur[14:17, 22:28, 14:17] = True  # 0.3 µm wide, 0.5 µm long
    spur &= ~body
    lab[spur] = 4
    lab[15, 2:7, 15] = 4  # a one-voxel strand
    rule = {"nucleus": {"smooth_radius_um": 0.2}}  # a ball 0.4 µm across
    out = refine_labels(lab, CLASSES, SP, rule)
    assert (out[spur] == 4).mean() < 0.3 and (out[14:17, 25:28, 14:17] == 2).all()
    assert (out[15, 2:6, 15] == 2).all()  # removed pieces take the surrounding label
    assert (out[body] == 4).mean() > 0.95  # the round body stays (but for digital bumps)
    assert (out[:, :, :2] == 1).all() and lab[15, 24, 15] == 4  # ice untouched, input too
    # a smaller ball (the voxel and its 6 neighbours) fits into the spur: its core stays
    kept = refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0.1}})
    assert (kept[15, 22:27, 15] == 4).all() and (kept[spur] == 4).mean() > 0.5
    # anisotropic voxels: 0.2 µm spans 2 voxels along z but 8 along y and x, so the spur,
    # now 0.3 µm thick in z but 0.075 µm in x, is thinner than the ball and goes
    aniso = refine_labels(lab, CLASSES, (0.1, 0.025, 0.025), rule)
    assert (aniso[spur] == 4).mean() < 0.3
    np.testing.assert_array_equal(
        refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0}}), lab
    )
    with pytest.raises(ValueError, match="smooth_radius_um"):
        refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": -1}})


def test_smooth_radius_keeps_label_zero_and_drops_objects_thinner_than_the_ball():
    lab = cell()
    lab[:, 28:, :] = 0  # no data
    lab[20:22, 20:22, 20:22] = 7  # a vacuole 0.2 µm wide: narrower than a 0.3 µm ball
    out = refine_labels(lab, CLASSES, SP, {"vacuole": {"smooth_radius_um": 0.15}})
    assert not (out == 7).any() and (out[20:22, 20:22, 20:22] == 2).all()
    lab[5:15, 20:27, 5:15] = 4  # nucleus up to one voxel before the no-data slab
    out = refine_labels(lab, CLASSES, SP, {"nucleus": {"smooth_radius_um": 0.3}})
    assert (out[:, 28:, :] == 0).all()


def test_rules_in_the_class_box_at_the_volume_border():
    """Per-class work runs in the class's bounding box: a class touching the volume border
    keeps a pocket open to the border, fills its enclosed hole, and its specks far from the
    rest of the class (another corner of the box) still go."""
    lab = np.full((12, 14, 16), 2, np.uint8)
    lab[0:6, 0:7, 0:8] = 4  # a nucleus in the corner of the volume
    lab[0, 2:4, 2:4] = 2  # a pocket open to the volume border: not a hole
    lab[3, 3, 3] = 2  # an enclosed hole: filled
    lab[11, 13, 15] = 4  # a speck at the opposite corner
    out = refine_labels(
        lab, {"cytoplasm": 2, "nucleus": 4}, (0.1, 0.1, 0.1),
        {"nucleus": {"min_volume_um3": 0.01, "fill_holes": True}},
    )  # fmt: skip
    assert (out[0, 2:4, 2:4] == 2).all()
    assert out[3, 3, 3] == 4
    assert out[11, 13, 15] == 2
    assert (out == 4).sum() == 6 * 7 * 8 - 4


# --------------------------------------------------------------------------- boundary step


def _blurred(shape_fn, n=40, inside=0.5, outside=0.2, blur=1.0, noise=0.02, seed=0):
    """A blurred, noisy object (LAC µm⁻¹) and its truth, centred off the voxel grid."""
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2 + 0.3
    d = shape_fn(z, y, x)  # signed distance (voxels), negative inside
    truth = d <= 0
    lac = ndi.gaussian_filter(np.where(truth, inside, outside), blur)
    lac += np.random.default_rng(seed).normal(0, noise, lac.shape)
    return lac.astype(np.float32), truth, d


@pytest.mark.parametrize("radius", [6.0, 10.0])
@pytest.mark.parametrize("start", [-1.5, 0.0, 1.0])
def test_snap_puts_a_blurred_ball_where_it_is(radius, start):
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - radius)
    labels = np.where(d <= start, 8, 2).astype(np.uint8)  # a classifier's seed, off by ≤ 1.5
    n = snap_boundaries(labels, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
    assert n > 0 or start == 0.0
    got = labels == 8
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.02)  # volume within 2 %
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.97
    assert set(np.unique(labels)) <= {2, 8}


@pytest.mark.parametrize("blur", [(1.2, 1.2, 1.2), (1.0, 2.0, 0.7)])
def test_estimate_blur_axes_measures_each_axis(blur):
    """A ball blurred with one width per axis (a limited tilt range's response is wider
    along the beam): each is measured within 0.1 voxel; an isotropic blur gives the same
    width on every axis."""
    lac, truth, _ = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8, blur=blur)
    got = estimate_blur_axes(truth.astype(np.uint8) * 6 + 2, lac, [8], (0.04,) * 3)
    assert got == pytest.approx(blur, abs=0.1)
    empty = np.full((8, 8, 8), 2, np.uint8)
    assert np.isnan(estimate_blur_axes(empty, lac[:8, :8, :8], [8], (0.04,) * 3)).all()


@pytest.mark.parametrize("radius", [6.0, 10.0])
@pytest.mark.parametrize("start", [-1.5, 0.0, 1.0])
def test_snap_reads_the_surroundings_where_each_side_is(radius, start):
    """A ball whose surroundings are darker on one side than on the other (a limited
    tilt range darkens an object's sides across the beam and smears it along it): each
    side's edge lies halfway between its own levels, so one level for the whole surface
    moves the bright side out and the dark side in (Dice 0.954-0.980 with it)."""
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - radius, noise=0.01)
    y = np.mgrid[:40, :40, :40][1] - 19.5 + 0.3
    lac = ndi.gaussian_filter(np.where(truth, 0.6, np.where(y > 0, 0.2, 0.28)), 1.0)
    lac = (lac + np.random.default_rng(0).normal(0, 0.01, lac.shape)).astype(np.float32)
    labels = np.where(d <= start, 8, 2).astype(np.uint8)
    snap_boundaries(labels, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
    got = labels == 8
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.015)
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.983


def test_snap_estimates_the_blur_and_keeps_thin_tubes():
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8, blur=1.0)
    assert estimate_blur(truth.astype(np.uint8) * 8, lac, [8], (0.04,) * 3) == pytest.approx(
        1.0, abs=0.1
    )
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(y * y + x * x) - 1.5, blur=1.5)
    assert estimate_blur(truth.astype(np.uint8) * 8, lac, [8], (0.04,) * 3) == pytest.approx(
        1.5, abs=0.15
    )
    # one object the model cannot describe (a ball in a dense shell, like the cell in
    # its wall) does not outvote three that it can
    ball = lambda c: lambda z, y, x: np.sqrt((z - c) ** 2 + y * y + x * x) - 4  # noqa: E731
    labels = np.full((40, 40, 40), 2, np.uint8)
    lac = np.full(labels.shape, 0.2, np.float32)
    for c in (-12, 0, 12):
        _, t, _ = _blurred(ball(c))
        labels[t] = 8
    _, shell, _ = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + (x - 12) ** 2) - 7)
    _, core, _ = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + (x - 12) ** 2) - 5)
    labels[core] = 7
    lac[labels == 8] = 0.5
    lac[shell & ~core] = 0.8
    lac[core] = 0.4
    lac = ndi.gaussian_filter(lac, 1.0)
    assert estimate_blur(labels, lac, [7, 8], (0.04,) * 3) == pytest.approx(1.0, abs=0.1)
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(y * y + x * x) - 2.75, inside=0.33, outside=0.22, noise=0.01
    )
    labels = np.where(d <= -0.5, 9, 2).astype(np.uint8)  # a thin seed in a 2.75-voxel tube
    snap_boundaries(labels, lac, 9, (0.04,) * 3, band_um=0.12, blur_vox=1.0)
    got = labels == 9
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.10)
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.9


@pytest.mark.parametrize("start", [-1.0, 1.0])
def test_snap_votes_a_low_contrast_ball_into_place(start):
    # a nucleus-like ball: 0.06 µm⁻¹ above its surroundings under noise of 0.035 µm⁻¹,
    # too little for single voxels (contrast < 6 residual SDs): placed by the vote
    # along its surface, unbiased although each voxel alone is a coin toss near it
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 12, inside=0.28, outside=0.22, noise=0.035
    )
    labels = np.where(d <= start, 4, 2).astype(np.uint8)  # ±25 % of the volume
    snap_boundaries(labels, lac, 4, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
    got = labels == 4
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.02)
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.95


# the central case's nucleus (0.048 µm⁻¹ above the cytoplasm, noise 0.035 µm⁻¹, a 4-voxel
# band), plain or with a denser rim under the envelope on one half of its surface (a
# heterochromatin rim: the object's contrast differs along its surface), seeded 2 voxels
# inside or outside as a classifier leaves it
@pytest.mark.parametrize(("rim", "start"), [(None, -2.0), (None, 2.0), (0.28, -2.0), (0.28, 2.0)])
def test_snap_places_a_low_contrast_ball_wherever_its_seed_starts(rim, start):
    # the vote alone moves whole layers and stops where a layer's majority flips: -4 / +7 %
    # (plain), +0.8 / +8 % (rim); its settled surface then takes one step of the offset
    # pooled along the surface, fitted with the local contrast (fitted alone, against one
    # contrast, it reads a fainter side of the edge as the edge lying inside: +1.8 to
    # +2.2 % on the rim ball, and a steady inward walk on a lymphocyte's nucleus)
    n = 48
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2 + 0.3
    d = np.sqrt(z * z + y * y + x * x) - 16
    truth = d <= 0
    inside = np.where((x > 0) & (d > -4), rim, 0.25) if rim else 0.266
    step = np.where(truth, inside, 0.218)
    lac = ndi.gaussian_filter(step, 1.0) + np.random.default_rng(0).normal(0, 0.035, d.shape)
    labels = np.where(d <= start, 4, 2).astype(np.uint8)
    snap_boundaries(labels, lac.astype(np.float32), 4, (0.04,) * 3, band_um=0.16, blur_vox=1.0)
    got = labels == 4
    # the rim's inner edge (4 voxels deep) lies within the reach of the fit of the edge's
    # own blur (3 voxels), which then reads the edge as a little sharper and moves it
    # out: +2.3 / +2.5 % (+5.2 / +3.9 % when that fit's window was the band around the
    # vote's surface; with the tomogram's blur, which the test gives right: -0.1 /
    # +0.7 %; the vote alone +0.8 / +8.0 %; Dice 0.975 / 0.971)
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.015 if rim is None else 0.03)
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > (0.97 if rim is None else 0.965)


# the central case's nucleus-like ball (blur 1 voxel), snapped with the tomogram's blur
# estimate off by 0.4-0.6 voxel (as the suite's is at some annotation styles): from the
# truth it must stay, from 2 voxels inside or outside come back. The offset fitted with
# the local contrast reads a model blurred more than the edge as the edge lying inside
# (and less, outside): with the tomogram's blur 0.6, +4.8 % from 2 voxels outside; the
# step now fits the edge's own blur first
@pytest.mark.parametrize("blur", [0.6, 1.6])
@pytest.mark.parametrize("start", [-2.0, 0.0, 2.0])
def test_snap_step_uses_the_edge_s_own_blur(blur, start):
    n = 48
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2 + 0.3
    d = np.sqrt(z * z + y * y + x * x) - 16
    truth = d <= 0
    step = np.where(truth, 0.266, 0.218)
    lac = ndi.gaussian_filter(step, 1.0) + np.random.default_rng(0).normal(0, 0.035, d.shape)
    labels = np.where(d <= start, 4, 2).astype(np.uint8)
    snap_boundaries(labels, lac.astype(np.float32), 4, (0.04,) * 3, band_um=0.16, blur_vox=blur)
    got = labels == 4
    assert got.sum() / truth.sum() == pytest.approx(1.0, abs=0.02)
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.97


# a vacuole-like ball (radius 11 voxels, 0.1 µm⁻¹ below its surroundings, blur 1 voxel)
# under noise of 0.09 µm⁻¹, seeded 1 voxel inside, on the truth and 1 voxel outside:
# placed by the vote, then the offset step with the edge's own blur. Fitted over the
# band around the vote's surface (a window cut by the band and the classifier's zone,
# mostly the layers beside a surface the same noise placed) the edge read sharper than
# it is (σ 0.94-1.09 voxel against the true 1.28 with the smoothing) and the ball grew:
# +6.2 / +3.0 / +3.7 %; fitted over 3 voxels about the surface it is fitted on, σ
# 1.19-1.24 and +2.8 / -0.8 / +0.3 %
def test_snap_step_fits_a_noisy_edge_s_blur_without_bias():
    errors = []
    for start in (-1.0, 0.0, 1.0):
        lac, truth, d = _blurred(
            lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 11,
            n=38,
            inside=0.137,
            outside=0.236,
            noise=0.09,
            seed=2,
        )
        labels = np.where(d <= start, 7, 2).astype(np.uint8)
        snap_boundaries(labels, lac, 7, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
        got = labels == 7
        errors.append(got.sum() / truth.sum() - 1)
        assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) > 0.95
    assert max(abs(e) for e in errors) < 0.035
    assert abs(np.mean(errors)) < 0.015  # unbiased: +0.8 % (the band's window: +4.3 %)


def test_snap_step_leaves_a_surface_that_is_no_edge():
    # a nucleus-like ball of which the seed is one half (the other a part the classifier
    # missed, more than the band deep): half the seed's surface cuts through the object,
    # where the edge fit finds no width, so the voted surface is not offset by a model
    # that does not describe it (the step with the tomogram's blur moved 1023 voxels)
    n = 48
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2 + 0.3
    d = np.sqrt(z * z + y * y + x * x) - 16
    truth = d <= 0
    lac = ndi.gaussian_filter(np.where(truth, 0.266, 0.218), 1.0)
    lac = (lac + np.random.default_rng(0).normal(0, 0.035, d.shape)).astype(np.float32)
    seed = np.where(truth & (x < 0), 4, 2).astype(np.uint8)
    voted = seed.copy()
    snap_boundaries(voted, lac, 4, (0.04,) * 3, band_um=0.16, blur_vox=1.0, offset_vox=0)
    got = seed.copy()
    snap_boundaries(got, lac, 4, (0.04,) * 3, band_um=0.16, blur_vox=1.0)
    assert np.count_nonzero(got != voted) <= 0.002 * truth.sum()


def test_snap_leaves_low_contrast_and_no_data_alone():
    # contrast 0.01 µm⁻¹ under noise 0.03: the data cannot place it, nothing moves
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8, inside=0.23, outside=0.22, noise=0.03
    )
    labels = np.where(d <= -2, 4, 2).astype(np.uint8)
    before = labels.copy()
    assert snap_boundaries(labels, lac, 4, (0.04,) * 3, blur_vox=1.0) == 0
    np.testing.assert_array_equal(labels, before)
    # label 0 (no data) is never given to or taken from an object
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8)
    labels = np.where(d <= -1.5, 8, 2).astype(np.uint8)
    labels[:, :, :5] = 0
    snap_boundaries(labels, lac, 8, (0.04,) * 3, blur_vox=1.0)
    assert (labels[:, :, :5] == 0).all()


def test_refine_boundary_rule_and_lac_aware_replacement():
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8)
    labels = np.where(d <= -1.5, 8, 2).astype(np.uint8)
    classes = {"cytoplasm": 2, "lipid_droplet": 8}
    rules = {"lipid_droplet": {"boundary_um": 0.08}}
    with pytest.raises(ValueError, match="lac"):
        refine_labels(labels, classes, (0.04,) * 3, rules)
    with pytest.raises(ValueError, match="boundary_um"):
        refine_labels(labels, classes, (0.04,) * 3, {"lipid_droplet": {"boundary_um": -1}}, lac=lac)
    out = refine_labels(labels, classes, (0.04,) * 3, rules, lac=lac)
    assert (out == 8).sum() / truth.sum() == pytest.approx(1.0, abs=0.02)
    # a dense fragment of "nucleus" lying on a mitochondrion joins the mitochondrion
    # (the neighbour nearest in LAC), not the cytoplasm that surrounds it more
    lab = np.full((20, 20, 30), 2, np.uint8)
    lac = np.full(lab.shape, 0.22, np.float32)
    lab[8:12, 8:12, 3:20] = 9  # a mitochondrion
    lab[8:12, 8:12, 20:23] = 4  # its end, read as nucleus
    lab[5:15, 5:15, 24:29] = 4  # the real nucleus, the largest piece
    lac[lab == 9] = 0.33
    lac[8:12, 8:12, 20:23] = 0.33
    lac[5:15, 5:15, 24:29] = 0.25
    classes = {"cytoplasm": 2, "nucleus": 4, "mitochondrion": 9}
    plain = refine_labels(lab, classes, (0.05,) * 3, {"nucleus": {"max_objects": 1}})
    assert (plain[8:12, 8:12, 20:23] == 2).all()  # by majority: cytoplasm
    aware = refine_labels(lab, classes, (0.05,) * 3, {"nucleus": {"max_objects": 1}}, lac=lac)
    assert (aware[8:12, 8:12, 20:23] == 9).all()


def test_removed_blob_touching_a_mitochondrion_barely_stays_what_surrounds_it():
    # a ±60° tilt series smears dense structures into the cytoplasm; the classifier reads
    # a blob of it as a second nucleus (LAC between the cytoplasm's and the mitochondria's,
    # nearer the mitochondria's). Dropped by max_objects, it touches a mitochondrion with a
    # few voxels of its surface: it stays cytoplasm (the LAC-nearest neighbour alone made
    # it a 700-voxel growth of the mitochondrion)
    rng = np.random.default_rng(0)
    lab = np.full((24, 40, 40), 2, np.uint8)
    z, y, x = np.mgrid[:24, :40, :40]
    lab[10:13, 10:13, 2:16] = 9  # a mitochondrion (a square tube along x)
    blob = (z - 12) ** 2 + (y - 11) ** 2 + (x - 21.5) ** 2 <= 5.6**2  # touches its end
    lab[blob] = 4
    nucleus = (z - 12) ** 2 + (y - 28) ** 2 + (x - 28) ** 2 <= 8**2  # the largest piece
    lab[nucleus] = 4
    assert not (blob & nucleus).any()
    lac = np.where(lab == 9, 0.30, 0.22) + rng.normal(0, 0.03, lab.shape)
    lac[blob] += 0.05
    lac[nucleus] += 0.04
    lac = lac.astype(np.float32)
    classes = {"cytoplasm": 2, "nucleus": 4, "mitochondrion": 9}
    out = refine_labels(lab, classes, (0.04,) * 3, {"nucleus": {"max_objects": 1}}, lac=lac)
    assert (out[blob] == 2).all()
    assert ((out == 9) == (lab == 9)).all()


def test_blur_halo_of_a_small_dense_droplet_is_not_a_mitochondrion():
    # a droplet of 2.5 voxels radius (LAC 0.53 in cytoplasm 0.23), blurred by 1 voxel: its
    # partial-volume shell passes through the mitochondria's level and the classifier reads
    # it as a mitochondrion wrapped around a too-small droplet. A real tube (radius 2.5
    # voxels) passing beside a second droplet keeps its voxels
    rng = np.random.default_rng(1)
    z, y, x = np.mgrid[:28, :32, :48].astype(float)
    ball = lambda c: np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)  # noqa: E731
    d1, d2 = ball((14, 9, 10)), ball((14, 16, 30))
    tube = np.sqrt((z - 14) ** 2 + (y - 21) ** 2) <= 2.5
    truth = np.full(z.shape, 2, np.uint8)
    truth[tube] = 9
    truth[(d1 <= 2.5) | (d2 <= 2.5)] = 8
    level = {2: 0.23, 8: 0.53, 9: 0.34}
    lac = ndi.gaussian_filter(np.vectorize(level.get)(truth).astype(np.float32), 1.0)
    lac = (lac + rng.normal(0, 0.005, lac.shape)).astype(np.float32)
    lab = truth.copy()
    lab[(d1 <= 4) & (d1 > 2)] = 9  # a droplet too small in a halo read as mitochondrion
    classes = {"cytoplasm": 2, "lipid_droplet": 8, "mitochondrion": 9}
    rules = {
        "lipid_droplet": {"boundary_um": 0.08},
        "mitochondrion": {"boundary_um": 0.12},
    }
    out = refine_labels(lab, classes, (0.04,) * 3, rules, lac=lac)
    assert not (out[d1 <= 6] == 9).any()  # the halo is gone …
    assert (out[d1 <= 2] == 8).all()
    assert (out == 9).sum() / tube.sum() == pytest.approx(1.0, abs=0.1)  # … the tube stays
    assert (out[tube] == 9).mean() > 0.9


def test_default_rules_snap_with_a_tomogram_and_skip_the_step_without():
    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 8)
    labels = np.where(d <= -1.5, 8, 2).astype(np.uint8)
    classes = {"cytoplasm": 2, "lipid_droplet": 8}
    plain = refine_labels(labels, classes, (0.04,) * 3)  # no tomogram: no boundary step
    np.testing.assert_array_equal(plain, labels)
    snapped = refine_labels(labels, classes, (0.04,) * 3, lac=lac)
    assert (snapped == 8).sum() / truth.sum() == pytest.approx(1.0, abs=0.02)


def test_snap_tiles_large_objects(monkeypatch):
    # an object larger than a tile is snapped tile by tile (memory bounded by the tile):
    # the result matches the whole-object one to within a few voxels
    import sxtflow.segment._boundary as refine

    lac, truth, d = _blurred(lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 10)
    seed = np.where(d <= -1.5, 8, 2).astype(np.uint8)
    whole = seed.copy()
    snap_boundaries(whole, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
    monkeypatch.setattr(refine, "_TILE", (16, 16, 16))
    assert len(list(refine._object_boxes(seed, 8, (0.04,) * 3, 0.4))) > 1
    tiled = seed.copy()
    snap_boundaries(tiled, lac, 8, (0.04,) * 3, band_um=0.08, blur_vox=1.0)
    assert (tiled == 8).sum() / truth.sum() == pytest.approx(1.0, abs=0.02)
    assert np.count_nonzero(tiled != whole) < 0.01 * truth.sum()


# single voxels decide (noise 0.02), or the vote along the surface (0.05)
@pytest.mark.parametrize(("noise", "tol"), [(0.02, 0.05), (0.05, 0.065)])
def test_snap_reads_levels_near_the_surface_not_beyond_a_wide_band(noise, tol):
    # both compartments have gradients (denser towards a nucleolus inside, towards other
    # organelles outside): levels read beyond a 4-voxel band sit 5 voxels from the edge
    # and put it 6 % (single voxels) inside; read just beyond the blur's reach (2 σ) they
    # are nearer the step (a gradient biases any level read off the edge): 4.6 % single
    # voxels; the vote then the offset step 5.7 % (6.8 / 7.7 % from 2 voxels inside /
    # outside: the surroundings' level read 2 σ out is above the one at the edge). The
    # vote alone is 1.6 % from the true surface but -10.6 / +1.6 % from ±2 voxels
    n = 40
    z, y, x = np.mgrid[:n, :n, :n] - (n - 1) / 2 + 0.3
    d = np.sqrt(z * z + y * y + x * x) - 12
    truth = d <= 0
    step = np.where(truth, 0.27 + 0.001 * np.clip(-d, 0, None), 0.22 + 0.001 * d)
    lac = ndi.gaussian_filter(step, 1.0) + np.random.default_rng(0).normal(0, noise, d.shape)
    labels = np.where(truth, 4, 2).astype(np.uint8)
    snap_boundaries(labels, lac.astype(np.float32), 4, (0.04,) * 3, band_um=0.16, blur_vox=1.0)
    assert (labels == 4).sum() / truth.sum() == pytest.approx(1.0, abs=tol)


def test_snap_stops_when_the_surface_settles(monkeypatch):
    # a noisy low-contrast ball seeded too small: the rounds walk the surface out and
    # stop once (almost) nothing moves; the early stop gives the volume of running on
    from sxtflow.segment import _boundary

    calls = []
    fit = _boundary._fit_levels
    monkeypatch.setattr(_boundary, "_fit_levels", lambda *a: calls.append(1) or fit(*a))
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(z * z + y * y + x * x) - 12, inside=0.28, outside=0.22, noise=0.035
    )
    volumes, rounds = [], []
    for settle in (0.0, 1e-2):
        calls.clear()
        labels = np.where(d <= -1.0, 4, 2).astype(np.uint8)
        snap_boundaries(labels, lac, 4, (0.04,) * 3, band_um=0.08, blur_vox=1.0, settle=settle)
        volumes.append(int((labels == 4).sum()))
        rounds.append(len(calls))
    assert rounds[1] <= rounds[0]
    assert volumes[1] == pytest.approx(volumes[0], rel=0.01)
    assert volumes[1] / truth.sum() == pytest.approx(1.0, abs=0.02)


def test_snap_leaves_specks_of_noise_alone_and_their_blur_votes_out():
    # a noisy tomogram (noise 0.07 µm⁻¹ per voxel, as FBP at 25 nm) with one real droplet
    # and single voxels the classifier read as the class: a speck fits a huge contrast on
    # its tiny blurred model, but what single voxels see (contrast times the model's
    # peak) is noise, so it is not grown into a blob of noise; pieces smaller than the
    # debris size do not vote for the blur either
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(z * z + y * y + (x - 8) ** 2) - 7, blur=1.5, noise=0.0
    )
    noise = np.random.default_rng(3).normal(0, 0.07, lac.shape).astype(np.float32)
    lac = lac + noise
    labels = np.where(truth, 8, 2).astype(np.uint8)
    rng = np.random.default_rng(4)
    far = np.argwhere(d > 6)
    specks = far[rng.choice(len(far), 30, replace=False)]
    labels[tuple(specks.T)] = 8
    before = labels.copy()
    snap_boundaries(labels, lac, 8, (0.025,) * 3, band_um=0.12, blur_vox=1.5)
    grown = (labels == 8) & (d > 3)  # away from the droplet
    assert np.count_nonzero(grown) <= np.count_nonzero((before == 8) & (d > 3))
    assert estimate_blur(before, lac, [8], (0.025,) * 3, min_voxels={8: 100}) == pytest.approx(
        1.5, abs=0.25
    )


@pytest.mark.parametrize(
    ("radius", "band", "seed", "tol"),
    [(10, 0.12, 0, 0.01), (6, 0.08, 0, 0.02), (6, 0.08, 1, 0.015)],
)
def test_snap_keeps_an_edge_the_classifier_already_placed(radius, band, seed, tol):
    # a classifier trained on both sides of every edge (`rim`) puts the surface where it
    # is: the step must not move it off. Started from its true mask, a ball (contrast
    # 0.11 µm⁻¹, blur 1.2 voxel, noise 0.035 µm⁻¹: the suite's central case) stays where
    # it is: one voxel's test places the surface to ±0.25 voxel only, so decided voxel by
    # voxel a small ball's surface jitters (radius 6: Dice 0.951–0.956); the surface
    # offset pooled along the surface keeps it (Dice 0.976–0.978; with the local levels of
    # session 25, seeds 0-3: -1.5 to +1.6 %, Dice 0.968-0.982, against -1.9 to +0.1 %,
    # 0.976-0.978 with one level for the surface: the same mean |ΔV|). (Not met for a tube of
    # 3 voxels radius, decided voxel by voxel: −6.6 %, Dice 0.93; docs/segmentation.md)
    lac, truth, d = _blurred(
        lambda z, y, x: np.sqrt(z * z + y * y + x * x) - radius,
        inside=0.33,
        outside=0.22,
        blur=1.2,
        noise=0.035,
        seed=seed,
    )
    for pooled in (True, False):
        labels = np.where(truth, 9, 2).astype(np.uint8)
        snap_boundaries(
            labels, lac, 9, (0.04,) * 3, band_um=band, blur_vox=1.2, offset_vox=0.1 * pooled
        )
        got = labels == 9
        dice = 2 * (got & truth).sum() / (got.sum() + truth.sum())
        if pooled:
            assert got.sum() / truth.sum() == pytest.approx(1.0, abs=tol)
            assert dice > 0.97
        elif radius < 8:  # voxel by voxel a small ball does not hold: the test can fail
            assert dice < 0.97
