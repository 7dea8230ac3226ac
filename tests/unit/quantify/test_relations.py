"""Tests for sxtflow.quantify on analytic objects with known distances."""

import numpy as np
import pandas as pd
import pytest

from sxtflow.quantify import instances, object_relations, surface_voxels


def ball(shape, centre_um, r_um, spacing):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    d2 = sum((g * s - c) ** 2 for g, s, c in zip(grids, spacing, centre_um, strict=True))
    return d2 <= r_um**2


@pytest.mark.parametrize("spacing", [(0.02, 0.02, 0.02), (0.04, 0.02, 0.02)])
@pytest.mark.parametrize("gap_um", [0.0, 0.1, 0.23])
def test_two_balls_distance_within_one_voxel(spacing, gap_um):
    shape = (int(1.6 / spacing[0]), int(1.0 / spacing[1]), int(1.6 / spacing[2]))
    r1, r2 = 0.3, 0.22
    c1 = np.array([0.81, 0.503, 0.42])
    u = np.array([0.6, 0.0, 0.8])  # oblique: crosses z (coarse) and x
    c2 = c1 + (r1 + r2 + gap_um) * u
    lab = np.zeros(shape, np.uint8)
    lab[ball(shape, c1, r1, spacing)] = 4
    lab[ball(shape, c2, r2, spacing)] = 9
    inst, table = instances(lab, {"nucleus": 4, "mitochondrion": 9})
    cell = np.ones(shape, bool)
    rel = object_relations(inst, table, spacing, cell).set_index("class")
    for a, b in (("nucleus", "mitochondrion"), ("mitochondrion", "nucleus")):
        d = rel.loc[a, f"dist_{b}_um"]
        assert abs(d - gap_um) <= max(spacing), (a, d, gap_um)
    assert np.isnan(rel.loc["nucleus", "dist_nucleus_um"])  # no other nucleus
    touching = gap_um < 0.5 * min(spacing)
    assert rel.loc["nucleus", "contacts_mitochondrion"] == int(touching or gap_um <= 0.02)
    if touching:
        assert rel.loc["mitochondrion", "contact_nucleus_area_um2"] > 0
    if gap_um > 2 * max(spacing):
        assert rel.loc["mitochondrion", "contact_nucleus_area_um2"] == 0


def test_membrane_distance_and_radial_position():
    spacing = (0.03, 0.03, 0.03)
    shape = (60, 60, 60)
    cell = ball(shape, (0.9, 0.9, 0.9), 0.8, spacing)
    lab = np.where(cell, 2, 1).astype(np.uint8)
    centre_obj = ball(shape, (0.9, 0.9, 0.9), 0.15, spacing)
    off_obj = ball(shape, (0.9, 0.9, 1.3), 0.15, spacing)  # 0.4 µm off centre
    lab[centre_obj] = 8
    lab[off_obj] = 8
    inst, table = instances(lab, {"cytoplasm": 2, "lipid_droplet": 8})
    rel = object_relations(inst, table, spacing, cell, targets=["lipid_droplet"])
    drops = rel[rel["class"] == "lipid_droplet"].sort_values("radial_position")
    assert drops["radial_position"].iloc[0] == pytest.approx(0.0, abs=0.05)
    assert drops["radial_position"].iloc[1] == pytest.approx(0.4 / 0.8, abs=0.05)
    # membrane distance of the off-centre droplet: 0.8 - 0.4 - 0.15 = 0.25 µm
    assert drops["membrane_distance_um"].iloc[1] == pytest.approx(0.25, abs=0.03)
    assert drops["membrane_distance_um"].iloc[0] == pytest.approx(0.65, abs=0.03)
    # nearest other droplet (same class): 0.4 - 0.3 = 0.1 µm
    np.testing.assert_allclose(drops["dist_lipid_droplet_um"], 0.1, atol=0.03)
    # the cytoplasm touches the membrane
    cyto = rel[rel["class"] == "cytoplasm"].iloc[0]
    assert cyto["membrane_distance_um"] == 0.0


def test_contact_area_and_counts():
    """A slab touching two boxes face to face: contact area = the two faces."""
    spacing = (0.05, 0.05, 0.05)
    lab = np.zeros((20, 30, 40), np.uint8)
    lab[2:18, 2:28, 5:10] = 4  # slab
    for y0 in (3, 16):
        lab[6:16, y0 : y0 + 10, 10:15] = 9  # 10×10×5 boxes face-adjacent to the slab
    lab[6:11, 4:9, 25:30] = 9  # a far box
    inst, table = instances(lab, {"nucleus": 4, "mitochondrion": 9})
    areas = {1: 2 * (16 * 26 + 16 * 5 + 26 * 5) * 0.05**2}
    areas |= {i: 1.0 for i in range(2, 5)}
    kw = {"surface_um2": areas}
    cell = np.ones(lab.shape, bool)
    rel = object_relations(inst, table, spacing, cell, contact_distance_um=0.0, **kw)
    slab = rel.set_index("object_id").loc[1]
    assert slab["contacts_mitochondrion"] == 2
    assert slab["dist_mitochondrion_um"] == 0.0
    # surface-voxel fraction × area: 2 × 100 face-adjacent surface voxels of the slab
    n_surf = int(surface_voxels(lab == 4).sum())
    assert slab["contact_mitochondrion_area_um2"] == pytest.approx(areas[1] * 200 / n_surf)
    far = rel.set_index("object_id").loc[int(inst[8, 6, 27])]
    assert far["contacts_nucleus"] == 0 and far["contact_nucleus_area_um2"] == 0
    assert far["dist_nucleus_um"] == pytest.approx(15 * 0.05)
    assert far["dist_mitochondrion_um"] == pytest.approx(10 * 0.05)
    # default threshold (one voxel) adds the rims around each face
    rel1 = object_relations(inst, table, spacing, cell, **kw).set_index("object_id")
    assert rel1.loc[1, "contact_mitochondrion_area_um2"] > slab["contact_mitochondrion_area_um2"]


def test_input_checks():
    lab = np.zeros((4, 4, 4), np.int32)
    t = pd.DataFrame({"object_id": [], "class": []})
    with pytest.raises(ValueError, match="3D"):
        object_relations(lab[0], t, (1, 1, 1))
    with pytest.raises(ValueError, match="spacing"):
        object_relations(lab, t, (1, 1))
    with pytest.raises(ValueError, match="cell_mask"):
        object_relations(lab, t, (1, 1, 1), np.ones((3, 3, 3), bool))
