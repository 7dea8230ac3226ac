"""The shortcuts of measure at real sizes (issue 14) give what the straightforward
computations give: exactly, on small volumes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from sxtflow import io, quantify, stages
from sxtflow.io import Volume
from sxtflow.options import DEFAULTS
from sxtflow.quantify._measure import _moments, _union, fill_holes

CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "lipid_droplet": 8, "mitochondrion": 9}


def moments_of_all_coordinates(mask, start, spacing):
    """Count, centroid and covariance from every voxel's coordinates (float64)."""
    c = np.argwhere(mask).astype(np.float64) - np.asarray(mask.shape) / 2.0
    n = len(c)
    mean = c.sum(axis=0) / max(n, 1)
    cov = (c.T @ c / max(n, 1) - np.outer(mean, mean)) * np.outer(spacing, spacing)
    return n, (mean + np.asarray(mask.shape) / 2.0 + np.asarray(start)) * spacing, cov


def random_masks(n, seed, max_edge=24):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        shape = tuple(int(s) for s in rng.integers(1, max_edge, 3))
        field = ndimage.gaussian_filter(rng.normal(size=shape), 1.3)
        yield field > rng.uniform(-0.25, 0.2)


def test_moments_from_projections_equal_those_of_every_coordinate_exactly():
    spacing = np.array([0.03, 0.02, 0.025])
    for mask in random_masks(25, seed=3):
        n, centroid, cov = _moments(mask, (5, 7, 11), spacing)
        want = moments_of_all_coordinates(mask, (5, 7, 11), spacing)
        assert n == want[0]
        np.testing.assert_array_equal(centroid, want[1])  # bit for bit: exact sums
        np.testing.assert_array_equal(cov, want[2])


def test_fill_holes_by_one_labelling_equals_scipy():
    for mask in random_masks(40, seed=4):
        np.testing.assert_array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))
    cube = np.ones((5, 5, 5), bool)
    cube[2, 2, 2] = cube[1, 2, 2] = False  # a cavity of two voxels
    assert fill_holes(cube).all()
    assert not fill_holes(np.zeros((3, 4, 5), bool)).any()


def test_union_lookup_table_equals_isin():
    rng = np.random.default_rng(5)
    lab = rng.integers(0, 12, (9, 10, 11)).astype(np.uint8)
    for values in ([2, 4], [9], [], [1, 2, 3, 300]):
        np.testing.assert_array_equal(_union(lab, values), np.isin(lab, values))
    np.testing.assert_array_equal(_union(lab.astype(np.int32), [2]), lab == 2)


def small_cell(seed=0):
    """A cell with a textured nucleus, two touching droplets, mitochondria, a hole, a
    protrusion and a piece of debris, and its LAC (µm⁻¹)."""
    rng = np.random.default_rng(seed)
    shape = (40, 48, 52)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    lab = np.ones(shape, np.uint8)
    lab[((zz - 20) / 15) ** 2 + ((yy - 24) / 18) ** 2 + ((xx - 24) / 19) ** 2 <= 1] = 2
    lab[19:22, 23:26, 40:50] = 2  # a protrusion
    lab[((zz - 20) / 8) ** 2 + ((yy - 22) / 9) ** 2 + ((xx - 20) / 9) ** 2 <= 1] = 4
    for cy in (33, 37):
        lab[(zz - 20) ** 2 + (yy - cy) ** 2 + (xx - 31) ** 2 <= 5] = 8
    mito = ndimage.gaussian_filter(rng.normal(size=shape), 1.5) > 0.12
    lab[mito & (lab == 2)] = 9
    lab[24:26, 30:32, 14:16] = 1  # a hole in the cell
    lab[1:4, 1:4, 1:4] = 2  # debris apart from the cell
    dense = ndimage.gaussian_filter(rng.normal(size=shape), 1.2) > 0.1
    lac = np.select([lab == 1, lab == 4], [0.1, np.where(dense, 0.36, 0.26)], 0.22)
    lac = (lac + rng.normal(0, 0.01, shape)).astype(np.float32)
    return lab, lac


def straightforward_tables(lab, lac, voxel_nm, spacing):
    """The tables of run_measure from the whole-volume calls, each computed on its own."""
    names = [k for k in CLASSES if k != "ice"]
    labels, tomo = Volume(lab, voxel_nm), Volume(lac, voxel_nm)
    cell = quantify.cell_mask(lab, [CLASSES[k] for k in names])
    opts = dict(DEFAULTS["surface"])
    radius = float(opts.pop("body_radius_um"))
    body = quantify.cell_body(cell, spacing, radius)
    prot = quantify.protrusions(cell, spacing, body=body, **opts)[0]
    summary = quantify.surface_summary(cell, spacing, prot, body=body, body_radius_um=radius)
    m = DEFAULTS["measure"]
    objects = quantify.measure_objects(
        labels, tomo, dict(CLASSES), min_volume_um3=m["min_volume_um3"], relations=True,
        contact_distance_um=m["contact_distance_um"],
        separate={k: v for k, v in m["separate"].items() if k in CLASSES},
    )  # fmt: skip
    row = quantify.cell_summary(objects, classes=names)
    row = pd.concat([row, summary.drop(columns=[c for c in summary if c in row])], axis=1)
    _, chrom = quantify.split_chromatin(lac, lab == 4, spacing, **DEFAULTS["chromatin"])
    return {"org": objects, "cell": row, "chrom": chrom, "surf": prot}


def test_run_measure_writes_the_tables_of_the_whole_volume_calls(tmp_path):
    lab, lac = small_cell()
    io.write_volume(tmp_path / "lab.mrc", Volume(lab, 50.0))
    io.write_volume(tmp_path / "lac.mrc", Volume(lac, 50.0))
    m = DEFAULTS["measure"]
    stages.run_measure(
        tmp_path / "lab.mrc", tmp_path / "lac.mrc", tmp_path / "org.tsv", tmp_path / "cell.tsv",
        tmp_path / "chrom.tsv", tmp_path / "prof.tsv", tmp_path / "surf.tsv", classes=CLASSES,
        min_volume_um3=m["min_volume_um3"], contact_distance_um=m["contact_distance_um"],
    )  # fmt: skip
    want = straightforward_tables(lab, lac, 50.0, (0.05,) * 3)
    assert len(want["org"]) > 8 and len(want["chrom"]) == 1 and len(want["surf"]) >= 1
    for name, table in want.items():
        io.write_table(tmp_path / f"want_{name}.tsv", table)
        got = (tmp_path / f"{name}.tsv").read_text()
        assert got == (tmp_path / f"want_{name}.tsv").read_text(), name


def test_run_chromatin_writes_the_chromatin_tables_of_run_measure(tmp_path):
    # the workflow's rule chromatin runs apart from measure: the same two files
    lab, lac = small_cell(seed=4)
    io.write_volume(tmp_path / "lab.mrc", Volume(lab, 50.0))
    io.write_volume(tmp_path / "lac.mrc", Volume(lac, 50.0))
    chrom = {"smooth_sigma_um": 0.06}
    stages.run_measure(
        tmp_path / "lab.mrc", tmp_path / "lac.mrc", tmp_path / "org.tsv", tmp_path / "cell.tsv",
        tmp_path / "chrom.tsv", tmp_path / "prof.tsv", classes=CLASSES, chromatin=chrom,
    )  # fmt: skip
    stages.run_chromatin(
        tmp_path / "lab.mrc", tmp_path / "lac.mrc", tmp_path / "c2.tsv", tmp_path / "p2.tsv",
        classes=CLASSES, chromatin=chrom,
    )  # fmt: skip
    assert len(io.read_table(tmp_path / "c2.tsv")) == 1
    assert (tmp_path / "c2.tsv").read_text() == (tmp_path / "chrom.tsv").read_text()
    assert (tmp_path / "p2.tsv").read_text() == (tmp_path / "prof.tsv").read_text()
    # without a nucleus class: empty tables, as run_measure writes them
    no_nucleus = {k: v for k, v in CLASSES.items() if k != "nucleus"}
    stages.run_chromatin(
        tmp_path / "lab.mrc", tmp_path / "lac.mrc", tmp_path / "c3.tsv", tmp_path / "p3.tsv",
        classes=no_nucleus,
    )  # fmt: skip
    stages.run_measure(
        tmp_path / "lab.mrc", tmp_path / "lac.mrc", tmp_path / "o3.tsv", tmp_path / "e3.tsv",
        tmp_path / "c4.tsv", tmp_path / "p4.tsv", classes=no_nucleus,
    )  # fmt: skip
    assert (tmp_path / "c3.tsv").read_text() == (tmp_path / "c4.tsv").read_text()
    assert (tmp_path / "p3.tsv").read_text() == (tmp_path / "p4.tsv").read_text()


def test_chromatin_on_its_box_equals_the_whole_volume():
    lab, lac = small_cell(seed=1)
    nucleus = lab == 4
    nucleus[30:36, 5:10, 40:46] = True  # a second nucleus near the border
    for spacing, sigma in (((0.05, 0.05, 0.05), None), ((0.08, 0.04, 0.05), 0.1)):
        box = quantify.chromatin_box(nucleus, spacing, sigma)
        want = quantify.split_chromatin(lac, nucleus, spacing, smooth_sigma_um=sigma)[1]
        got = quantify.split_chromatin(lac[box], nucleus[box], spacing, smooth_sigma_um=sigma)[1]
        assert len(got) == 2
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert quantify.chromatin_box(np.zeros((4, 4, 4), bool), 0.05) is None


@pytest.mark.parametrize("smooth", [20, 5])
def test_given_cell_area_and_instances_equal_computing_them(smooth):
    lab, lac = small_cell(seed=2)
    spacing = (0.05,) * 3
    names = {k: v for k, v in CLASSES.items() if k != "ice"}
    cell = quantify.cell_mask(lab, list(names.values()))
    split = quantify.instances(lab, names, spacing_um=spacing, separate={"lipid_droplet": 0.1})
    common = dict(separate={"lipid_droplet": 0.1}, smooth_iterations=smooth, cell=cell)
    want = quantify.measure_objects(Volume(lab, 50.0), Volume(lac, 50.0), CLASSES, **common)
    area = float(want.loc[want["class"] == "cell", "surface_um2"].iloc[0])
    got = quantify.measure_objects(
        Volume(lab, 50.0), Volume(lac, 50.0), CLASSES, instance_split=split,
        cell_surface_um2=area, **common,
    )  # fmt: skip
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    if smooth == 20:  # surface_summary meshes with 20 iterations: the same surface
        body = quantify.cell_body(cell, spacing)
        prot = quantify.protrusions(cell, spacing, body=body)[0]
        pd.testing.assert_frame_equal(
            quantify.surface_summary(cell, spacing, prot, body=body, cell_surface_um2=area),
            quantify.surface_summary(cell, spacing, prot, body=body),
            check_exact=True,
        )


def test_pieces_too_small_to_be_long_enough_are_dropped_as_the_full_path_drops_them(
    monkeypatch,
):
    from sxtflow.quantify import _protrusions

    lab, _ = small_cell(seed=3)
    cell = quantify.cell_mask(lab, [2, 4, 8, 9])
    rng = np.random.default_rng(3)
    shell = ndimage.binary_dilation(cell) & ~cell  # membrane roughness: bumps of 1-6 voxels
    for z, y, x in np.argwhere(shell)[rng.choice(int(shell.sum()), 60, replace=False)]:
        cell[z : z + rng.integers(1, 3), y : y + rng.integers(1, 3), x] = True
    spacing = np.array([0.05, 0.04, 0.045])
    body = quantify.cell_body(cell, spacing, 0.15)
    fast = quantify.protrusions(cell, spacing, body=body, min_length_um=0.3)
    monkeypatch.setattr(_protrusions, "_length_bound", lambda n, spacing: np.inf)
    full = quantify.protrusions(cell, spacing, body=body, min_length_um=0.3)
    pd.testing.assert_frame_equal(fast[0], full[0], check_exact=True)
    np.testing.assert_array_equal(fast[1], full[1])
    assert len(full[0]) >= 1
    # the bound holds for every piece the full path measures
    pieces, n = ndimage.label(cell & ~body, structure=np.ones((3, 3, 3), bool))
    checked = 0
    for k, sl in enumerate(ndimage.find_objects(pieces), start=1):
        big = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        piece = pieces[big] == k
        row = _protrusions._piece_row(k, piece, body[big], np.zeros(3), spacing, np.zeros(3))
        if row is not None:
            checked += 1
            assert row["length_um"] <= _protrusions._length_bound(int(piece.sum()), spacing)
            # the tighter bound: the geodesic path has one base voxel (touching the body)
            base = piece & ndimage.binary_dilation(body[big], structure=np.ones((3, 3, 3)))
            m = int(piece.sum()) - int(base.sum()) + 1
            assert row["length_um"] <= _protrusions._length_bound(m, spacing)
    assert checked > 20


def test_meshes_without_trimesh_processing_equal_the_processed_ones():
    import trimesh
    from skimage.measure import marching_cubes

    from sxtflow.quantify._mesh import _mesh_crop

    spacing = np.array([0.05, 0.03, 0.04])
    for mask in random_masks(12, seed=6):
        if not mask.any():
            continue
        verts, faces, _, _ = marching_cubes(
            np.pad(mask, 1).astype(np.float32), level=0.5, spacing=tuple(spacing)
        )
        verts = (verts - spacing)[:, ::-1]
        processed = trimesh.Trimesh(vertices=verts, faces=faces, process=True)
        raw = _mesh_crop(mask, spacing, smooth_iterations=0)
        np.testing.assert_array_equal(raw.vertices, processed.vertices)
        np.testing.assert_array_equal(np.sort(raw.faces, axis=1), np.sort(processed.faces, axis=1))


def test_one_voxel_dilation_and_erosion_by_shifts_equal_scipy():
    from sxtflow.quantify._measure import CONNECTIVITY_26, _dilate, _erode6

    face6 = ndimage.generate_binary_structure(3, 1)
    for mask in random_masks(30, seed=7, max_edge=12):
        np.testing.assert_array_equal(
            _dilate(mask), ndimage.binary_dilation(mask, structure=CONNECTIVITY_26)
        )
        np.testing.assert_array_equal(
            _dilate(mask, full=False), ndimage.binary_dilation(mask, structure=face6)
        )
        want = ndimage.binary_erosion(np.pad(mask, 1), structure=face6)[1:-1, 1:-1, 1:-1]
        np.testing.assert_array_equal(_erode6(mask), want)


def test_contact_counts_equal_those_of_every_pair():
    from scipy.spatial.distance import cdist

    from sxtflow.quantify._relations import _gap

    lab, _ = small_cell(seed=4)
    spacing = np.array([0.05, 0.04, 0.045])
    names = {k: v for k, v in CLASSES.items() if k not in ("ice", "cytoplasm")}
    inst, table = quantify.instances(lab, names)
    contact = 0.06
    rel = quantify.object_relations(
        inst, table, spacing, quantify.cell_mask(lab, [2, 4, 8, 9]), contact_distance_um=contact
    )
    surf = {
        int(o): np.argwhere(quantify.surface_voxels(inst == o)) * spacing
        for o in table["object_id"]
    }
    checked = 0
    for oid in table["object_id"]:
        p = surf[int(oid)]
        for target in names:
            ids = table.loc[table["class"] == target, "object_id"]
            others = [int(o) for o in ids if o != oid]
            if not others:
                continue
            pts = np.concatenate([surf[o] for o in others])
            owner = np.concatenate([np.full(len(surf[o]), o) for o in others])
            d = cdist(p, pts)
            nearest = np.argmin(d, axis=1)  # contact points: their nearest target point's gap
            in_contact = _gap(p, pts[nearest], spacing) <= contact + 1e-9
            found = set()
            for i in np.flatnonzero(in_contact):  # every pair of a contact point
                g = _gap(np.repeat(p[i : i + 1], len(pts), axis=0), pts, spacing)
                found |= set(owner[g <= contact + 1e-9].tolist())
            row = rel[rel["object_id"] == oid].iloc[0]
            assert row[f"contacts_{target}"] == len(found), (oid, target)
            checked += len(found) > 0
    assert checked >= 3


def test_nearest_gap_with_the_box_filter_equals_asking_every_target_point():
    from scipy.spatial import cKDTree
    from scipy.spatial.distance import cdist

    from sxtflow.quantify._relations import _gap, _nearest_gaps

    rng = np.random.default_rng(8)
    spacing = np.array([0.05, 0.04, 0.045])
    for _ in range(20):
        p = np.unique(rng.integers(10, 20, (60, 3)), axis=0) * spacing  # an object
        shell = rng.integers(0, 40, (800, 3)) * spacing  # a target far and around it
        d_box = np.linalg.norm(
            np.maximum(p.min(0) - shell, 0) + np.maximum(shell - p.max(0), 0), axis=1
        )
        pts = shell[d_box > 0.2]  # nothing within reach: the bounded, reversed query
        tree = cKDTree(pts)
        g, got = _nearest_gaps(tree, pts, p, spacing, reach=0.1)
        assert np.isinf(g).all()
        sub = p[:: max(1, len(p) // 100)]
        bound = float(cdist(sub, pts).min()) * (1 + 1e-9) + 1e-12
        d = cdist(pts, p)
        j = np.argmin(d, axis=1)
        ok = d[np.arange(len(pts)), j] < bound
        want = float(_gap(p[j[ok]], pts[ok], spacing).min())
        assert got == want


def test_known_boxes_give_what_searching_the_whole_volume_gives():
    """Every function that takes a box the caller knows (the class boxes, the cell's box)
    gives exactly what it gives when it searches the whole volume itself."""
    from sxtflow.quantify._mesh import _class_boxes
    from sxtflow.segment import mask_box

    lab, lac = small_cell(seed=3)
    lab = np.pad(lab, ((3, 5), (6, 2), (4, 4)), constant_values=1)  # boxes off the origin
    lac = np.pad(lac, ((3, 5), (6, 2), (4, 4)), constant_values=0.1)
    spacing = (0.05,) * 3
    names = {k: v for k, v in CLASSES.items() if k != "ice"}
    boxes = _class_boxes(lab)
    union = tuple(
        slice(min(boxes[v][a].start for v in names.values()),
              max(boxes[v][a].stop for v in names.values()))
        for a in range(3)
    )  # fmt: skip
    assert union != tuple(slice(0, n) for n in lab.shape)
    cell = quantify.cell_mask(lab, names.values())
    np.testing.assert_array_equal(quantify.cell_mask(lab, names.values(), box=union), cell)
    sep = {"lipid_droplet": 0.1}
    inst, table = quantify.instances(lab, names, spacing_um=spacing, separate=sep)
    inst_b, table_b = quantify.instances(
        lab, names, spacing_um=spacing, separate=sep, class_boxes=boxes
    )
    np.testing.assert_array_equal(inst_b, inst)
    pd.testing.assert_frame_equal(table_b, table)
    common = dict(separate=sep, cell=cell, relations=True, contact_distance_um=0.05)
    want = quantify.measure_objects(Volume(lab, 50.0), Volume(lac, 50.0), CLASSES, **common)
    got = quantify.measure_objects(
        Volume(lab, 50.0), Volume(lac, 50.0), CLASSES, box=union, **common
    )
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    csl = mask_box(cell)
    body = quantify.cell_body(cell, spacing)
    np.testing.assert_array_equal(quantify.cell_body(cell, spacing, cell_box=csl), body)
    prot, plab = quantify.protrusions(cell, spacing, body=body)
    prot_b, plab_b = quantify.protrusions(cell, spacing, body=body, cell_box=csl)
    assert len(prot) >= 1
    pd.testing.assert_frame_equal(prot_b, prot, check_exact=True)
    np.testing.assert_array_equal(plab_b, plab)
    pd.testing.assert_frame_equal(
        quantify.surface_summary(cell, spacing, prot, body=body, cell_box=csl),
        quantify.surface_summary(cell, spacing, prot, body=body),
        check_exact=True,
    )
    nucleus = lab == 4
    for sigma in (None, 0.1):
        assert quantify.chromatin_box(
            lab.shape, spacing, sigma, box=boxes[4]
        ) == quantify.chromatin_box(nucleus, spacing, sigma)


def test_cell_body_in_the_cells_box_equals_the_opening_with_a_margin():
    # the opening's distance transforms run on the cell's box with one background layer:
    # the nearest background voxel of a cell voxel and the nearest eroded voxel of any cell
    # voxel lie in it, so a margin of the ball's radius changes nothing
    from sxtflow.segment._distance import distance_um

    def opening_with_margin(cell, spacing, r):
        pad = np.ceil(r / np.asarray(spacing)).astype(int) + 3
        c = np.pad(cell, [(p, p) for p in pad])
        r_tie = r * (1.0 + 1e-5)
        eroded = distance_um(c, spacing) > r_tie
        if not eroded.any():
            return np.zeros_like(cell)
        dilated = (distance_um(~eroded, spacing) <= r_tie) & c
        return dilated[tuple(slice(p, p + n) for p, n in zip(pad, cell.shape, strict=True))]

    checked = 0
    for k, mask in enumerate(random_masks(30, seed=7, max_edge=30)):
        cell = np.zeros((34, 36, 38), bool)
        cell[2 : 2 + mask.shape[0], 1 : 1 + mask.shape[1], : mask.shape[2]] = mask  # at a face
        spacing = (0.05, 0.04, 0.045) if k % 2 else (0.05, 0.05, 0.05)
        for r in (0.08, 0.15):
            want = opening_with_margin(cell, spacing, r)
            np.testing.assert_array_equal(quantify.cell_body(cell, spacing, r), want)
            checked += bool(want.any())
    assert checked > 10
