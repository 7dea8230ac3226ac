"""Tests for sxtflow.quantify: an analytic cell with a rod, a sheet and a bleb; simulated
lymphocytes with known filopodia and lamellipodia."""

import numpy as np
import pytest
from scipy import ndimage

from sxtflow.quantify import cell_body, protrusions, surface_summary
from sxtflow.sim import simulate_cell

S = 0.05  # µm voxels


def analytic_cell():
    """Ball r = 1.5 µm; a rod (r 0.15 µm, 1.2 µm out) along +x; a sheet (0.2 µm thick,
    2 µm wide, 1 µm out) along −x; a bleb (ball r 0.4 µm, centre on the surface) along +y."""
    shape = (90, 110, 150)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    z, y, x = z * S, y * S, x * S
    c = np.array([2.2, 2.7, 3.7])
    cell = (z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 1.5**2
    rod = ((z - c[0]) ** 2 + (y - c[1]) ** 2 <= 0.15**2) & (x >= c[2]) & (x <= c[2] + 2.7)
    sheet = (np.abs(z - c[0]) <= 0.1) & (np.abs(y - c[1]) <= 1.0) & (x <= c[2]) & (x >= c[2] - 2.5)
    bleb = (z - c[0]) ** 2 + (y - c[1] - 1.5) ** 2 + (x - c[2]) ** 2 <= 0.4**2
    return cell | rod | sheet | bleb, c


def test_analytic_protrusions():
    cell, c = analytic_cell()
    table, lab = protrusions(cell, S, body_radius_um=0.5)
    assert len(table) == 3
    by_type = table.set_index("type")
    assert set(by_type.index) == {"filopodium", "lamellipodium", "bleb"}
    rod = by_type.loc["filopodium"]
    # the sphere surface is at 1.5 µm on the axis; the rod ends at 2.7 µm: 1.2 µm out
    assert rod["length_um"] == pytest.approx(1.2, rel=0.05)
    assert rod["thickness_um"] == pytest.approx(0.3, abs=2 * S)
    assert rod["direction_x"] > 0.99
    assert rod["base_area_um2"] == pytest.approx(np.pi * 0.15**2, rel=0.5)
    sheet = by_type.loc["lamellipodium"]
    # the sheet leaves the curved surface between 1.5 µm (axis) and 1.1 µm (edges) from c
    assert 0.95 <= sheet["length_um"] <= 1.45
    assert sheet["thickness_um"] == pytest.approx(0.2, abs=2 * S)
    assert sheet["direction_x"] < -0.9
    bleb = by_type.loc["bleb"]
    assert 0.2 <= bleb["length_um"] <= 0.45  # height above the opened body (≤ 0.4 µm)
    assert bleb["direction_y"] > 0.9
    assert (lab > 0).sum() == pytest.approx(table["volume_um3"].sum() / S**3)
    summary = surface_summary(cell, S, table).iloc[0]
    assert summary["n_protrusions"] == 3 and summary["n_filopodia"] == 1
    assert summary["n_lamellipodia"] == 1 and summary["n_blebs"] == 1
    assert summary["protrusion_volume_fraction"] == pytest.approx(
        table["volume_um3"].sum() / (cell.sum() * S**3)
    )
    assert summary["surface_roughness"] > 0.1
    assert abs(summary["body_roughness"]) < 0.05  # the body is a ball


def test_smooth_ball_has_no_protrusions():
    z, y, x = np.ogrid[:60, :60, :60]
    ball = (z - 29.6) ** 2 + (y - 30.2) ** 2 + (x - 29.9) ** 2 <= 25**2
    body = cell_body(ball, (0.04, 0.04, 0.04), 0.5)
    assert (body == ball).mean() > 0.99  # the opening shaves a few lattice corners
    table, lab = protrusions(ball, 0.04, body=body)
    assert len(table) == 0 and not lab.any()
    s = surface_summary(ball, 0.04, table, body=body).iloc[0]
    assert s["n_protrusions"] == 0 and s["protrusion_volume_fraction"] == 0
    assert abs(s["surface_roughness"]) < 0.01


def test_anisotropic_voxels_rod_length():
    """The same rod at 0.1 µm along z: the length is physical."""
    cell, _ = analytic_cell()
    coarse = cell[::2]  # 0.1 µm along z, 0.05 µm in plane
    table, _ = protrusions(coarse, (0.1, 0.05, 0.05), body_radius_um=0.5)
    rod = table[table["type"] == "filopodium"]
    assert len(rod) == 1
    assert rod["length_um"].iloc[0] == pytest.approx(1.2, rel=0.07)


@pytest.fixture(scope="module")
def lymphocyte_matches():
    """(truth, detected row or None) for every protrusion of three simulated lymphocytes."""
    pairs = []
    for seed in (1, 2, 5):
        _, lab = simulate_cell("lymphocyte", (128, 160, 160), 60.0, seed=seed)
        cell = ndimage.binary_fill_holes(lab.data > 1)  # not ice, not outside the sample
        scale = lab.meta["truth"]["scale"]
        table, _ = protrusions(cell, lab.spacing_um, body_radius_um=0.5 * scale)
        dirs = table[["direction_z", "direction_y", "direction_x"]].to_numpy()
        for truth in lab.meta["truth"]["protrusions"]:
            cos = dirs @ np.asarray(truth["direction"]) if len(dirs) else np.zeros(0)
            j = int(np.argmax(cos)) if len(cos) else -1
            pairs.append((truth, table.iloc[j] if j >= 0 and cos[j] > 0.9 else None))
    return pairs


def test_simulated_lymphocyte_protrusions(lymphocyte_matches):
    pairs = lymphocyte_matches
    assert len(pairs) >= 10
    found = [(t, r) for t, r in pairs if r is not None]
    assert len(found) >= 0.9 * len(pairs)
    right = sum(r["type"] == t["type"] for t, r in found)
    assert right >= 0.85 * len(found)
    rel = np.array([abs(r["length_um"] - t["length_um"]) / t["length_um"] for t, r in found])
    assert np.mean(rel <= 0.10) >= 0.9
    assert np.median(rel) < 0.06


def test_input_checks():
    with pytest.raises(ValueError, match="3D"):
        cell_body(np.ones((4, 4), bool), 0.05)
    with pytest.raises(ValueError, match="spacing"):
        cell_body(np.ones((4, 4, 4), bool), (0.05, 0.05))
    with pytest.raises(ValueError, match="body_radius"):
        cell_body(np.ones((4, 4, 4), bool), 0.05, 0.0)
    table, lab = protrusions(np.zeros((5, 5, 5), bool), 0.05)
    assert len(table) == 0 and not lab.any()


def test_cell_body_is_the_opening_with_a_closed_ball():
    """Equal to scipy's binary opening with the ball of voxels within r (anisotropic
    voxels, voxels at exactly r included), away from the volume border."""
    rng = np.random.default_rng(4)
    cell = ndimage.gaussian_filter(rng.random((30, 40, 44)), 2.5) > 0.5
    cell[:3] = cell[-3:] = False
    cell[:, :3] = cell[:, -3:] = cell[:, :, :3] = cell[:, :, -3:] = False
    spacing = np.array([0.04, 0.025, 0.025])
    r = 0.1  # exactly 4 voxels along y and x: the tie must count as inside the ball
    half = np.floor(r / spacing).astype(int)
    grid = np.mgrid[tuple(slice(-h, h + 1) for h in half)]
    ball = sum((g * s) ** 2 for g, s in zip(grid, spacing, strict=True)) <= r**2 * (1 + 1e-9)
    want = ndimage.binary_opening(np.pad(cell, 8), structure=ball)[8:-8, 8:-8, 8:-8]
    np.testing.assert_array_equal(cell_body(cell, spacing, r), want)
