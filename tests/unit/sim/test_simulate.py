"""Tests of the SXT simulator: materials, cells, projections and the virtual annotator."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xraydb
from scipy import ndimage as ndi
from skimage.registration import phase_cross_correlation
from skimage.transform import radon

from sxtflow import sim
from sxtflow.io import Projections, Volume
from sxtflow.labels import default_labels
from sxtflow.sim import annotate, compartment_lac, material_lac, project, simulate_cell, tilt_angles
from sxtflow.sim._materials import HENKE_517

CLASSES = ["ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"]
ORGANELLES = [
    "nucleus",
    "nucleolus",
    "heterochromatin",
    "vacuole",
    "lipid_droplet",
    "mitochondrion",
]


@pytest.fixture(scope="module")
def yeast():
    return simulate_cell("yeast", (64, 64, 64), 80, seed=7)


@pytest.fixture(scope="module")
def lymphocyte():
    return simulate_cell("lymphocyte", (64, 64, 64), 150, seed=7)


def _sphere_volume(n=64, voxel_nm=50.0, radius_um=1.0, mu=0.5, sub=4):
    """Uniform sphere centred on the radon rotation centre, with partial-volume edges."""
    v = voxel_nm / 1000.0
    c = n // 2
    off = (np.arange(sub) + 0.5) / sub - 0.5
    idx = (np.arange(n) - c) * v
    frac = np.zeros((n, n, n))
    for oz in off:
        for oy in off:
            for ox in off:
                z = (idx + oz * v)[:, None, None]
                y = (idx + oy * v)[None, :, None]
                x = (idx + ox * v)[None, None, :]
                frac += (z * z + y * y + x * x) <= radius_um**2
    frac /= sub**3
    return Volume((mu * frac).astype(np.float32), voxel_nm)


def _line_integrals(p: Projections) -> np.ndarray:
    flat = p.flats.mean(axis=0)
    dark = p.darks.mean(axis=0)
    return -np.log((p.data - dark) / (flat - dark))


# --------------------------------------------------------------------------- materials


def test_material_lac_matches_xraydb_for_water():
    expected = xraydb.material_mu("H2O", 517.0, density=1.0, kind="photo") / 1e4
    assert material_lac("H2O", 1.0) == pytest.approx(expected, rel=0.01)
    assert 0.09 < material_lac("H2O", 0.92) < 0.13


def test_material_lac_table_at_517_ev_is_xraydb_exactly():
    # the looked-up values (no xraydb import in the jobs) are xraydb's own, bit for bit
    for (formula, density), value in HENKE_517.items():
        mu = xraydb.material_mu(formula, 517.0, density=density, kind="photo")
        assert value == float(mu) * 1e-4, formula
        assert material_lac(formula, density) == value
    # other energies and materials still go to xraydb
    assert material_lac("H2O", 1.0, 520.0) != HENKE_517[("H2O", 1.0)]
    assert material_lac("H2O", 0.5) == pytest.approx(HENKE_517[("H2O", 1.0)] / 2, rel=1e-12)


def test_compartment_lac_ordering_and_ranges():
    lac = compartment_lac()
    assert lac["lipid_droplet"] > lac["nucleus"] > lac["cytoplasm"] > lac["vacuole"] > lac["ice"]
    assert lac["heterochromatin"] > lac["nucleus"]
    assert lac["ice"] == pytest.approx(0.10, abs=0.015)
    assert 0.2 <= lac["cytoplasm"] <= 0.25
    assert 0.3 <= lac["mitochondrion"] <= 0.35
    assert 0.6 <= lac["lipid_droplet"] <= 0.8
    assert lac["lipid_droplet"] == max(lac.values())
    # a fresh copy each time, so callers cannot spoil the cache
    lac["ice"] = -1
    assert compartment_lac()["ice"] > 0


# --------------------------------------------------------------------------- cells


def test_simulate_cell_types_and_values(yeast):
    lac, lab = yeast
    assert lac.data.dtype == np.float32 and lab.data.dtype == np.uint8
    assert lac.data.shape == lab.data.shape == (64, 64, 64)
    assert lac.voxel_nm == lab.voxel_nm == (80.0, 80.0, 80.0)
    assert lac.meta["unit"] == "1/um"
    assert lac.meta["ice_lac_per_um"] == pytest.approx(compartment_lac()["ice"], rel=1e-4)
    # vacuum outside the cylinder: exactly zero, as radon requires
    n = 64
    yy, xx = np.mgrid[:n, :n] - n // 2
    outside = yy**2 + xx**2 > (n // 2) ** 2
    assert np.all(lac.data[:, outside] == 0)
    assert np.all(lab.data[:, outside] == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        radon(lac.data[32], theta=[0.0], circle=True)
    ice = lab.data == default_labels().value("ice")
    assert np.median(lac.data[ice]) == pytest.approx(lac.meta["ice_lac_per_um"], rel=0.05)


def test_simulate_cell_deterministic_under_seed():
    a_lac, a_lab = simulate_cell("yeast", (48, 48, 48), 100, seed=3)
    b_lac, b_lab = simulate_cell("yeast", (48, 48, 48), 100, seed=3)
    c_lac, c_lab = simulate_cell("yeast", (48, 48, 48), 100, seed=4)
    np.testing.assert_array_equal(a_lac.data, b_lac.data)
    np.testing.assert_array_equal(a_lab.data, b_lab.data)
    assert a_lab.meta == b_lab.meta
    assert not np.array_equal(a_lab.data, c_lab.data)


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        (
            "yeast",
            [
                "ice",
                "cytoplasm",
                "cell_wall",
                "nucleus",
                "nucleolus",
                "vacuole",
                "lipid_droplet",
                "mitochondrion",
            ],
        ),
        (
            "lymphocyte",
            [
                "ice",
                "cytoplasm",
                "nucleus",
                "nucleolus",
                "heterochromatin",
                "lipid_droplet",
                "mitochondrion",
                "filopodium",
                "lamellipodium",
            ],
        ),
    ],
)
def test_all_labels_present_and_inside_the_cell(which, expected, request):
    lac, lab = request.getfixturevalue(which)
    t = default_labels()
    present = {t.name(v) for v in np.unique(lab.data) if v}
    assert present == set(expected)
    data = lab.data
    ice = data == t.value("ice")
    # organelles never touch the ice: they lie inside the cytoplasm
    organelles = np.isin(data, [t.value(n) for n in ORGANELLES])
    assert not (ndi.binary_dilation(organelles) & ice).any()
    # the whole cell (protrusions included) lies in the cylinder with a margin
    cell = (data > 0) & ~ice
    n = data.shape[1]
    zz, yy, xx = np.nonzero(cell)
    rad = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    assert rad.max() < n / 2 - 2
    assert zz.min() >= 2 and zz.max() <= data.shape[0] - 3
    # separate organelles: each counted object is one connected component
    truth = lab.meta["truth"]
    for name, key in (("lipid_droplet", "lipid_droplets"), ("vacuole", "vacuoles")):
        _, count = ndi.label(data == t.value(name))
        assert count == truth[key]
    # LAC follows the labels
    med = {
        name: np.median(lac.data[data == t.value(name)])
        for name in ("cytoplasm", "nucleus", "lipid_droplet")
    }
    assert med["lipid_droplet"] > med["nucleus"] > med["cytoplasm"]


def test_lymphocyte_truth(lymphocyte):
    _, lab = lymphocyte
    truth = lab.meta["truth"]
    assert truth["heterochromatin_fraction"] == pytest.approx(0.3, abs=0.01)
    kinds = [p["type"] for p in truth["protrusions"]]
    assert kinds.count("lamellipodium") == 1
    assert kinds.count("filopodium") >= 2
    scale = truth["scale"]
    for p in truth["protrusions"]:
        assert p["length_um"] >= 0.8 * scale
        assert p["thickness_um"] > 0
    t = default_labels()
    assert truth["label_voxels"]["nucleus"] == int((lab.data == t.value("nucleus")).sum())


def test_condition_changes_what_it_says():
    kw = dict(shape=(64, 64, 64), voxel_nm=80, seed=11)
    t = default_labels()
    lip = t.value("lipid_droplet")
    few_lac, few = simulate_cell("yeast", condition={"lipid_droplets": 2}, **kw)
    many_lac, many = simulate_cell("yeast", condition={"lipid_droplets": 6}, **kw)
    assert few.meta["truth"]["lipid_droplets"] == 2
    assert many.meta["truth"]["lipid_droplets"] == 6
    assert (many.data == lip).sum() > 1.5 * (few.data == lip).sum()
    assert many.meta["condition"] == {"lipid_droplets": 6}

    _, big = simulate_cell("yeast", condition={"lipid_droplets": 4, "lipid_radius_um": 0.4}, **kw)
    _, small = simulate_cell("yeast", condition={"lipid_droplets": 4, "lipid_radius_um": 0.2}, **kw)
    assert (big.data == lip).sum() > 3 * (small.data == lip).sum()

    kw_l = dict(shape=(64, 64, 64), voxel_nm=150, seed=5)
    _, lo = simulate_cell("lymphocyte", condition={"heterochromatin_fraction": 0.15}, **kw_l)
    _, hi = simulate_cell("lymphocyte", condition={"heterochromatin_fraction": 0.45}, **kw_l)
    assert lo.meta["truth"]["heterochromatin_fraction"] == pytest.approx(0.15, abs=0.01)
    assert hi.meta["truth"]["heterochromatin_fraction"] == pytest.approx(0.45, abs=0.01)

    base_lac, base = simulate_cell("yeast", **kw)
    scaled_lac, scaled = simulate_cell("yeast", condition={"lac_scale": 1.2}, **kw)
    np.testing.assert_array_equal(base.data, scaled.data)  # geometry unchanged
    core = ndi.binary_erosion(base.data == t.value("nucleus"), iterations=2)
    ratio = np.median(scaled_lac.data[core] / base_lac.data[core])
    assert ratio == pytest.approx(1.2, rel=0.01)
    cyto = ndi.binary_erosion(base.data == t.value("cytoplasm"), iterations=2)
    assert np.median(scaled_lac.data[cyto] / base_lac.data[cyto]) == pytest.approx(1.0, rel=0.01)

    _, two = simulate_cell("yeast", condition={"vacuoles": 2}, **kw)
    assert two.meta["truth"]["vacuoles"] == 2


def test_unknown_condition_key_is_an_error():
    with pytest.raises(ValueError, match="lipids"):
        simulate_cell("yeast", (32, 32, 32), 150, seed=0, condition={"lipids": 3})
    with pytest.raises(ValueError, match="cell type"):
        simulate_cell("bacterium", (32, 32, 32), 150, seed=0)
    with pytest.raises(ValueError, match="lipid_droplets"):
        simulate_cell("yeast", (32, 32, 32), 150, seed=0, condition={"lipid_droplets": -1})


def test_cell_scaled_to_fit_small_field():
    lac, lab = simulate_cell("lymphocyte", (48, 48, 48), 100, seed=1)
    truth = lab.meta["truth"]
    assert truth["scale"] < 1
    cell = (lab.data > 1) & (lab.data != default_labels().value("ice"))
    zz, yy, xx = np.nonzero(cell)
    assert np.hypot(yy - 23.5, xx - 23.5).max() < 22


# --------------------------------------------------------------------------- projections


def test_tilt_angles():
    full = tilt_angles(90)
    assert full.shape == (90,)
    assert full[0] == 0 and full[-1] == pytest.approx(np.pi - np.pi / 90)
    tilt = tilt_angles(139, 69)
    assert tilt[0] == pytest.approx(-np.deg2rad(69)) and tilt[-1] == pytest.approx(np.deg2rad(69))
    np.testing.assert_allclose(tilt, -tilt[::-1], atol=1e-12)


def test_projection_of_sphere_follows_beer_lambert():
    r, mu = 1.0, 0.5
    vol = _sphere_volume(radius_um=r, mu=mu)
    p = project(vol, tilt_angles(6), photons=None)
    assert p.data.shape == (6, 64, 64) and p.data.dtype == np.float32
    assert p.pixel_nm == 50.0
    assert p.meta["noise_free"] and p.meta["shifts_px"] == [[0.0, 0.0]] * 6
    li = _line_integrals(p)
    c = 64 // 2
    np.testing.assert_allclose(li[:, c, c], 2 * r * mu, rtol=0.01)
    # a chord half-way out: 2 mu sqrt(r^2 - x^2)
    x = 10 * 0.05
    np.testing.assert_allclose(li[:, c, c + 10], 2 * mu * np.sqrt(r**2 - x**2), rtol=0.02)
    # open beam outside the sphere
    np.testing.assert_allclose(li[:, :, :3], 0, atol=1e-5)


def test_projection_agrees_with_skimage_radon(yeast):
    lac, _ = yeast
    theta = np.deg2rad([0.0, 23.0, 61.5, 90.0, 137.0])
    p = project(lac, theta, photons=None)
    li = _line_integrals(p)
    pixel_um = lac.voxel_nm[2] / 1000
    for z in (20, 32, 45):
        ref = radon(lac.data[z], theta=np.rad2deg(theta), circle=True).T * pixel_um
        assert np.abs(li[:, z] - ref).max() < 0.01 * ref.max()


def test_poisson_noise_has_the_right_variance():
    vol = _sphere_volume(n=48, radius_um=0.8, mu=0.5, sub=2)
    theta = np.zeros(40)
    p = project(vol, theta, photons=1000, dark_counts=20, seed=3)
    gains = np.asarray(p.meta["beam_gain"])
    counts = (p.data - 20) / gains[:, None, None]
    mean = counts.mean(axis=0)
    var = counts.var(axis=0, ddof=1) * gains.mean() ** 2
    # Poisson: variance of signal + dark = mean of signal + dark
    ratio = var.mean() / (mean + 20).mean()
    assert ratio == pytest.approx(1.0, rel=0.05)
    assert p.darks.mean() == pytest.approx(20, rel=0.02)
    assert p.darks.var() == pytest.approx(20, rel=0.05)
    assert p.flats.mean() == pytest.approx(1020, rel=0.02)
    # noisy series still gives the right line integrals on average
    li = _line_integrals(p).mean(axis=0)
    assert li[24, 24] == pytest.approx(2 * 0.8 * 0.5, rel=0.03)


def test_jitter_truth_recorded_and_applied(yeast):
    lac, _ = yeast
    theta = tilt_angles(24)
    clean = project(lac, theta, photons=None)
    shaken = project(lac, theta, photons=None, jitter_px=1.5, seed=2)
    shifts = np.asarray(shaken.meta["shifts_px"])
    assert shifts.shape == (24, 2)
    np.testing.assert_allclose(np.sqrt((shifts**2).mean(axis=0)), 1.5, rtol=1e-6)
    a = _line_integrals(clean)
    b = _line_integrals(shaken)
    for i in (0, 5, 17):
        # the content of projection i moved by shifts[i]
        measured, _, _ = phase_cross_correlation(b[i], a[i], upsample_factor=20, normalization=None)
        np.testing.assert_allclose(measured, shifts[i], atol=0.15)


def test_blur_smooths_projections(yeast):
    lac, _ = yeast
    sharp = _line_integrals(project(lac, [0.0], photons=None))[0]
    blurred = _line_integrals(project(lac, [0.0], photons=None, blur_nm=120))[0]
    assert np.abs(np.diff(blurred, axis=1)).max() < 0.8 * np.abs(np.diff(sharp, axis=1)).max()
    assert blurred.sum() == pytest.approx(sharp.sum(), rel=0.02)


# --------------------------------------------------------------------------- annotations


@pytest.mark.parametrize("which", ["yeast", "lymphocyte"])
def test_scribbles_are_sparse_and_right(which, request):
    _, lab = request.getfixturevalue(which)
    t = default_labels()
    ann = annotate(lab, CLASSES, slices_per_class=3, seed=1)
    assert ann.data.dtype == np.uint8 and ann.data.shape == lab.data.shape
    assert ann.voxel_nm == lab.voxel_nm
    painted = ann.data > 0
    assert painted.mean() < 0.05
    truth = t.to_classes(lab.data, CLASSES)
    assert (ann.data[painted] == truth[painted]).mean() >= 0.95
    chosen = set().union(*map(set, ann.meta["slices"].values()))
    assert set(np.flatnonzero(painted.any(axis=(1, 2)))) <= chosen
    for c in CLASSES:
        v = t.value(c)
        if (truth == v).any():
            assert (ann.data == v).any(), c
            zs = ann.meta["slices"][c]
            assert 1 <= len(zs) <= 3
            outlines = set(ann.meta["outline_slices"].get(c, []))
            assert outlines <= chosen  # outlines only in slices chosen for an organelle
            assert set(np.flatnonzero((ann.data == v).any(axis=(1, 2)))) <= set(zs) | outlines
    again = annotate(lab, CLASSES, slices_per_class=3, seed=1)
    np.testing.assert_array_equal(ann.data, again.data)
    other = annotate(lab, CLASSES, slices_per_class=3, seed=2)
    assert not np.array_equal(ann.data, other.data)


def test_slice_mode_labels_full_planes(yeast):
    _, lab = yeast
    t = default_labels()
    ann = annotate(lab, CLASSES, slices_per_class=2, seed=0, mode="slices")
    truth = t.to_classes(lab.data, CLASSES)
    zs = ann.meta["slices"]["all"]
    assert len(zs) >= 2
    np.testing.assert_array_equal(ann.data[zs], truth[zs])
    others = np.setdiff1d(np.arange(lab.data.shape[0]), zs)
    assert not ann.data[others].any()
    for c in CLASSES:
        if (truth == t.value(c)).any():
            assert (ann.data == t.value(c)).any(), c
    with pytest.raises(ValueError, match="mode"):
        annotate(lab, CLASSES, mode="polygons")


@pytest.mark.parametrize("which", ["yeast", "lymphocyte"])
def test_rim_traces_both_sides_of_boundaries(which, request):
    _, lab = request.getfixturevalue(which)
    t = default_labels()
    truth = t.to_classes(lab.data, CLASSES)
    one = annotate(lab, CLASSES, slices_per_class=3, seed=1)
    both = annotate(lab, CLASSES, slices_per_class=3, seed=1, rim=True)
    assert both.meta["rim"] is True and one.meta["rim"] is False
    # the same strokes and outside arcs, plus voxels on the inner side of boundaries
    kept = one.data > 0
    np.testing.assert_array_equal(both.data[kept], one.data[kept])
    painted = both.data > 0
    np.testing.assert_array_equal(both.data[painted], truth[painted])  # all correct
    assert painted.sum() > kept.sum()

    def on_boundary(ann, inside, outside):
        """Annotated voxels of ``inside`` with an in-plane 4-neighbour in ``outside``."""
        grown = ndi.binary_dilation(outside, np.array([[[0, 1, 0], [1, 1, 1], [0, 1, 0]]]))
        return int(((ann > 0) & inside & grown).sum())

    cell = np.isin(truth, [t.value(c) for c in CLASSES if c != "ice"])
    ice = truth == t.value("ice")
    # the cell's outline: ice touching the cell and the cell's own rim, both annotated
    assert on_boundary(both.data, ice, cell) > 0 and on_boundary(both.data, cell, ice) > 0
    assert on_boundary(both.data, cell, ice) > on_boundary(one.data, cell, ice)
    for c in ("nucleus", "mitochondrion"):
        own = truth == t.value(c)
        if own.any():
            rim = on_boundary(both.data, own, ~own & (truth > 0))
            assert rim > on_boundary(one.data, own, ~own & (truth > 0)), c


# --------------------------------------------------------------------------- robustness variants


def test_morphology_conditions_change_only_what_they_name():
    kw = dict(shape=(48, 56, 56), voxel_nm=100, seed=4)
    t = default_labels()
    _, base = simulate_cell("yeast", **kw)
    cond = {"mitochondrion_radius_um": (0.16, 0.2), "mitochondrion_bend": 0.6, "mitochondria": 5}
    _, thick = simulate_cell("yeast", condition=cond, **kw)
    radii = [m["radius_um"] for m in thick.meta["truth"]["mitochondrion_list"]]
    sc = thick.meta["truth"]["scale"]  # every size × the cell's scale
    assert radii and all(0.16 * sc - 1e-4 <= r <= 0.2 * sc + 1e-4 for r in radii)
    assert len(set(radii)) > 1  # drawn per tube
    nuc = t.value("nucleus")
    np.testing.assert_array_equal(base.data == nuc, thick.data == nuc)  # same nucleus
    _, flat = simulate_cell("yeast", condition={"vacuole_flatness": 0.4, "vacuoles": 1}, **kw)
    _, round_ = simulate_cell("yeast", condition={"vacuoles": 1}, **kw)
    vac = t.value("vacuole")
    assert flat.meta["truth"]["vacuole_list"][0]["flatness"] == 0.4
    assert 0 < (flat.data == vac).sum() < 0.6 * (round_.data == vac).sum()
    for bad in ({"vacuole_flatness": 0}, {"mitochondrion_radius_um": -1}, {"mitochondria": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            simulate_cell("yeast", condition=bad, **kw)


def test_degrade_blurs_and_adds_the_stated_noise():
    lac = np.zeros((24, 40, 40), np.float32)
    lac[:, 5:35, 5:35] = 0.1
    lac[8:16, 15:25, 15:25] = 0.5
    vol = Volume(lac, 40.0, {"kind": "lac"})
    clean = sim.degrade(vol, blur_vox=1.2, noise_per_um=0.0)
    edge = clean.data[12, 20, 12:28]
    assert edge.max() < 0.5 and edge[3] > 0.3 > edge[2]  # the edge blurred ...
    assert edge[2] + edge[3] == pytest.approx(0.6, abs=0.002)  # ... symmetric about it
    noisy = sim.degrade(vol, blur_vox=0.0, noise_per_um=0.03, seed=1)
    inside = noisy.data[:, 10:30, 10:30] - lac[:, 10:30, 10:30]
    assert inside.std() == pytest.approx(0.03, rel=0.05) and abs(inside.mean()) < 0.002
    assert noisy.data[:, 0, 0].max() == 0  # outside the sample cylinder: no data
    again = sim.degrade(vol, blur_vox=0.0, noise_per_um=0.03, seed=1)
    np.testing.assert_array_equal(noisy.data, again.data)
    assert noisy.meta["noise_per_um"] == 0.03 and noisy.voxel_nm == vol.voxel_nm


def _in_plane_depth(mask):
    """Per-slice distance (voxels) of each voxel of ``mask`` to the nearest voxel outside."""
    return np.stack([ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1] for m in mask])


@pytest.mark.parametrize("margin", [1, 3])
def test_interior_strokes_keep_away_from_edges_with_gaps(yeast, margin):
    _, lab = yeast
    t = default_labels()
    truth = t.to_classes(lab.data, CLASSES)
    ann = annotate(lab, CLASSES, slices_per_class=2, seed=3, mode="interior", margin=margin)
    assert ann.meta["margin"] == margin and ann.meta["mode"] == "interior"
    painted = ann.data > 0
    np.testing.assert_array_equal(ann.data[painted], truth[painted])  # all correct
    for c in ("ice", "cytoplasm", "nucleus", "vacuole"):
        own = truth == t.value(c)
        mine = ann.data == t.value(c)
        assert mine.any() and 1 <= len(ann.meta["slices"][c]) <= 2, c
        # big classes: every stroke voxel lies more than ``margin`` voxels inside
        assert _in_plane_depth(own)[mine].min() > margin, c
    assert not ann.meta["outline_slices"]  # nothing traced at boundaries
    again = annotate(lab, CLASSES, slices_per_class=2, seed=3, mode="interior", margin=margin)
    np.testing.assert_array_equal(ann.data, again.data)
    # dashed: strokes have gaps, so a scribble of the same seed paints more
    full = annotate(lab, CLASSES, slices_per_class=2, seed=3)
    assert painted.sum() < (full.data > 0).sum()


def test_contour_mode_paints_outlines_only(yeast):
    _, lab = yeast
    t = default_labels()
    truth = t.to_classes(lab.data, CLASSES)
    ann = annotate(lab, CLASSES, slices_per_class=2, seed=3, mode="contour")
    painted = ann.data > 0
    np.testing.assert_array_equal(ann.data[painted], truth[painted])
    for c in ("nucleus", "vacuole", "lipid_droplet", "mitochondrion"):
        own = truth == t.value(c)
        mine = ann.data == t.value(c)
        if own.any():
            assert mine.any(), c
            assert _in_plane_depth(own)[mine].max() == 1, c  # the object's own outer ring
    cell = np.isin(truth, [t.value(c) for c in CLASSES if c != "ice"])
    cyto = ann.data == t.value("cytoplasm")
    assert cyto.any() and _in_plane_depth(cell)[cyto].max() == 1  # the cell's outline
    with pytest.raises(ValueError, match="margin"):
        annotate(lab, CLASSES, mode="interior", margin=-1)
