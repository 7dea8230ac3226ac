"""Meshes (sxtflow.quantify) and their pictures (sxtflow.plot): analytic balls and ellipsoids,
orientation, files and pictures."""

import numpy as np
import pytest
import trimesh

from sxtflow.io import Volume
from sxtflow.plot import decimate_for_display, render, slice_panel
from sxtflow.quantify import class_meshes, mask_mesh, object_meshes, write_ply, write_scene


def ellipsoid(semi_um, spacing_um, margin=3):
    """Voxelised ellipsoid with semi-axes ``semi_um`` along (z, y, x), centred in its box."""
    n = [int(np.ceil(a / s)) + margin for a, s in zip(semi_um, spacing_um, strict=True)]
    grids = np.ogrid[tuple(slice(-k, k + 1) for k in n)]
    r2 = sum((g * s / a) ** 2 for g, s, a in zip(grids, spacing_um, semi_um, strict=True))
    return r2 <= 1.0


def ellipsoid_area(a, b, c):
    """Knud Thomsen's approximation (≤ 1.1 % error; exact for a sphere)."""
    p = 1.6075
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def test_ball_area_and_orientation():
    r = 12
    m = mask_mesh(ellipsoid((r, r, r), (1, 1, 1)), (1, 1, 1))
    assert m.is_watertight
    assert m.volume > 0
    area = 4 * np.pi * r**2
    assert abs(m.area / area - 1) < 0.03
    raw = mask_mesh(ellipsoid((r, r, r), (1, 1, 1)), (1, 1, 1), smooth_iterations=0)
    assert raw.area > 1.05 * area  # the staircase that smoothing removes
    assert raw.volume > 0


def test_vertex_order_is_xyz_in_um():
    # a box elongated along x (last array axis), voxels 0.5 µm in z
    mask = np.zeros((10, 12, 30), bool)
    mask[2:8, 3:9, 5:25] = True
    m = mask_mesh(mask, (0.5, 0.1, 0.1), smooth_iterations=0)
    lo, hi = m.bounds
    ext = hi - lo
    np.testing.assert_allclose(ext, [20 * 0.1, 6 * 0.1, 6 * 0.5], atol=1e-9)
    # voxel centres at index * spacing: the box spans indices 5..24 (+/- half a voxel)
    np.testing.assert_allclose(lo, [4.5 * 0.1, 2.5 * 0.1, 1.5 * 0.5], atol=1e-9)


def test_anisotropic_spacing():
    semi = (20.0, 20.0, 20.0)
    sp = (2.0, 1.0, 1.0)
    m = mask_mesh(ellipsoid(semi, sp), sp)
    assert m.is_watertight and m.volume > 0
    assert abs(m.area / (4 * np.pi * 20**2) - 1) < 0.03
    ext = m.bounds[1] - m.bounds[0]
    np.testing.assert_allclose(ext, 40.0, rtol=0.05)


def test_ellipsoid_area():
    semi = (10.0, 16.0, 24.0)
    m = mask_mesh(ellipsoid(semi, (1, 1, 1)), 1.0)
    assert abs(m.area / ellipsoid_area(*semi) - 1) < 0.03


def test_border_object_is_closed():
    mask = ellipsoid((12, 12, 12), (1, 1, 1))
    cut = mask[: mask.shape[0] // 2]  # half ball touching the volume border
    m = mask_mesh(cut, 1.0)
    assert m.is_watertight and m.volume > 0
    mask2 = np.ones((6, 7, 8), bool)  # fills the whole volume
    m2 = mask_mesh(mask2, 1.0, smooth_iterations=0)
    assert m2.is_watertight
    assert m2.volume == pytest.approx(6 * 7 * 8, rel=0.05)


def test_empty_mask_gives_empty_mesh():
    m = mask_mesh(np.zeros((4, 5, 6), bool), 1.0)
    assert len(m.vertices) == 0 and len(m.faces) == 0


def test_bad_input():
    with pytest.raises(ValueError, match="3D"):
        mask_mesh(np.zeros((4, 5), bool), 1.0)
    with pytest.raises(ValueError, match="spacing"):
        mask_mesh(np.zeros((4, 5, 6), bool), (1.0, -1.0, 1.0))


def two_balls():
    lab = np.zeros((30, 30, 60), np.int32)
    zz, yy, xx = np.ogrid[:30, :30, :60]
    lab[(zz - 15) ** 2 + (yy - 15) ** 2 + (xx - 15) ** 2 <= 100] = 1
    lab[(zz - 15) ** 2 + (yy - 15) ** 2 + (xx - 44) ** 2 <= 100] = 3
    return lab


def test_object_meshes_positions_and_ids():
    lab = two_balls()
    meshes = object_meshes(lab, (1.0, 1.0, 2.0))
    assert sorted(meshes) == [1, 3]
    for m in meshes.values():
        assert m.is_watertight and m.volume > 0
    # centres in µm, (x, y, z)
    np.testing.assert_allclose(meshes[1].centroid, [30.0, 15.0, 15.0], atol=0.2)
    np.testing.assert_allclose(meshes[3].centroid, [88.0, 15.0, 15.0], atol=0.2)
    only = object_meshes(lab, 1.0, ids=[3, 7])
    assert len(only[3].faces) > 0 and len(only[7].faces) == 0


def test_class_meshes_skip_ice_and_concatenate():
    lab = np.where(two_balls() > 0, 4, 1).astype(np.uint8)
    vol = Volume(lab, (20.0, 20.0, 20.0))
    meshes = class_meshes(vol, {"ice": 1, "nucleus": 4, "vacuole": 7})
    assert list(meshes) == ["nucleus"]
    m = meshes["nucleus"]
    assert m.is_watertight
    assert len(m.split(only_watertight=False)) == 2
    assert m.volume == pytest.approx(2 * 4 / 3 * np.pi * (10 * 0.02) ** 3, rel=0.03)


def test_write_scene_and_ply(tmp_path):
    lab = two_balls()
    meshes = object_meshes(lab, 0.02)
    named = {"nucleus": meshes[1], "vacuole": meshes[3], "empty": trimesh.Trimesh()}
    path = write_scene(tmp_path / "scene.glb", named, {"nucleus": "#4f7cff", "vacuole": "#3fc8e0"})
    scene = trimesh.load(path)
    assert sorted(scene.geometry) == ["nucleus", "vacuole"]
    colour = scene.geometry["nucleus"].visual.material.baseColorFactor
    np.testing.assert_array_equal(colour, [0x4F, 0x7C, 0xFF, 255])
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    ply = write_ply(tmp_path / "nucleus.ply", meshes[1])
    back = trimesh.load(ply)
    assert back.is_watertight
    assert back.volume == pytest.approx(meshes[1].volume, rel=1e-6)
    with pytest.raises(ValueError, match="no non-empty"):
        write_scene(tmp_path / "none.glb", {"x": trimesh.Trimesh()}, {})
    assert not (tmp_path / "none.glb").exists()


def test_decimate_for_display():
    m = mask_mesh(ellipsoid((20, 20, 20), (1, 1, 1)), 1.0)
    d = decimate_for_display(m, 2000)
    assert 200 < len(d.faces) <= 2000
    assert abs(d.area / m.area - 1) < 0.1


def png_variance(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    return float(img[..., :3].var())


def test_render(tmp_path):
    lab = two_balls()
    meshes = object_meshes(lab, 0.02)
    named = {"nucleus": meshes[1], "vacuole": meshes[3]}
    path = render(
        named, {"nucleus": "#4f7cff", "vacuole": "#ffb000"}, tmp_path / "r.png", view=(30, 45)
    )
    assert path.exists() and path.stat().st_size > 5000
    assert png_variance(path) > 1e-3


def test_slice_panel(tmp_path):
    lab = np.where(two_balls() > 0, 4, 1).astype(np.uint8)
    rng = np.random.default_rng(0)
    lac = (np.where(lab == 4, 0.3, 0.1) + rng.normal(0, 0.01, lab.shape)).astype(np.float32)
    path = slice_panel(
        Volume(lac, (40.0, 20.0, 20.0)),
        Volume(lab, (40.0, 20.0, 20.0)),
        {"nucleus": "#4f7cff", 1: "#2b3a55"},
        tmp_path / "s.png",
    )
    assert path.exists() and png_variance(path) > 1e-3
    with pytest.raises(ValueError, match="differ"):
        slice_panel(Volume(lac, 20.0), Volume(lab[:-1], 20.0), {}, tmp_path / "x.png")
