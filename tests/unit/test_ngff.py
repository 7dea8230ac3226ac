"""OME-Zarr export (sxtflow.ngff, run_export_ome_zarr) round-trips through ome-zarr-py's reader."""

from __future__ import annotations

import numpy as np
import pytest

from sxtflow import io, stages
from sxtflow.cli import main
from sxtflow.io import InputError, Volume
from sxtflow.labels import default_labels

pytest.importorskip("ome_zarr", reason="OME-Zarr export needs the ome-zarr extra (make install)")

from sxtflow import ngff  # noqa: E402

SHAPE = (32, 40, 48)
VOXEL = (60.0, 50.0, 50.0)  # nm, anisotropic on purpose
CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("ngff")
    rng = np.random.default_rng(0)
    lac = rng.normal(0.3, 0.05, SHAPE).astype(np.float32)
    labels = rng.choice(np.array(list(CLASSES.values()), np.uint8), SHAPE)
    io.write_volume(root / "tomogram.mrc", Volume(lac, VOXEL, {"unit": "1/um"}))
    io.write_volume(root / "labels.mrc", Volume(labels, VOXEL))
    probs = rng.dirichlet(np.ones(3), SHAPE).astype(np.float32).transpose(3, 0, 1, 2)
    arr = io.create_zarr_array(
        root / "probabilities.zarr", "probabilities", probs.shape, (3, 16, 20, 24)
    )
    arr[:] = probs
    arr.attrs.update({"classes": CLASSES, "voxel_nm": list(VOXEL)})
    io.seal_store(root / "probabilities.zarr")  # as the predict rule does: readers verify it
    out = root / "ome"
    info = stages.run_export_ome_zarr(
        root / "tomogram.mrc",
        out,
        labels={"segmentation": root / "labels.mrc"},
        probabilities=root / "probabilities.zarr",
        levels=3,
        chunks=(16, 16, 16),
    )
    return root, lac, labels, probs, info


def test_image_round_trip(sample):
    root, lac, *_, info = sample
    assert info == {"levels": 3, "labels": ["segmentation"], "probabilities": True}
    nodes = ngff.read_levels(root / "ome" / "tomogram.ome.zarr")
    image = nodes["tomogram"]
    assert image["axes"] == ["z", "y", "x"]
    assert [tuple(a.shape) for a in image["levels"]] == [SHAPE, (16, 20, 24), (8, 10, 12)]
    np.testing.assert_array_equal(np.asarray(image["levels"][0]), lac)
    for i, scale in enumerate(image["scale_um"]):
        np.testing.assert_allclose(scale, [v / 1000 * 2**i for v in VOXEL])
    # level 1 is the 2x2x2 block mean, its voxel centred on the eight it averages
    mean = lac.reshape(16, 2, 20, 2, 24, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(np.asarray(image["levels"][1]), mean, rtol=1e-5)
    np.testing.assert_allclose(image["translation_um"][1], [v / 1000 / 2 for v in VOXEL])


def test_labels_round_trip(sample):
    root, _, labels, *_ = sample
    nodes = ngff.read_levels(root / "ome" / "tomogram.ome.zarr")
    seg = nodes["segmentation"]
    assert len(seg["levels"]) == 3
    np.testing.assert_array_equal(np.asarray(seg["levels"][0]), labels)
    assert set(np.unique(np.asarray(seg["levels"][2]))) <= set(CLASSES.values())
    np.testing.assert_allclose(seg["scale_um"][2], [v / 1000 * 4 for v in VOXEL])
    table = default_labels()
    for name, value in CLASSES.items():
        assert seg["properties"][value]["name"] == name
        want = np.array(ngff.rgba(table.colour(name))) / 255
        np.testing.assert_allclose(seg["colors"][value], want)


def test_probabilities_round_trip(sample):
    root, _, _, probs, _ = sample
    nodes = ngff.read_levels(root / "ome" / "probabilities.ome.zarr")
    p = nodes["probabilities"]
    assert p["axes"] == ["c", "z", "y", "x"]
    assert [tuple(a.shape) for a in p["levels"]] == [(3, *SHAPE), (3, 16, 20, 24), (3, 8, 10, 12)]
    np.testing.assert_array_equal(np.asarray(p["levels"][0]), probs)
    np.testing.assert_allclose(p["scale_um"][1], [1.0] + [v / 1000 * 2 for v in VOXEL])
    assert p["channel_names"] == ["ice", "cytoplasm", "nucleus"]


def test_bad_labels_write_nothing(sample, tmp_path):
    root = sample[0]
    io.write_volume(tmp_path / "small.mrc", Volume(np.zeros((2, 2, 2), np.uint8), VOXEL))
    with pytest.raises(InputError, match="label volume shape"):
        stages.run_export_ome_zarr(
            root / "tomogram.mrc", tmp_path / "out", labels={"x": tmp_path / "small.mrc"}
        )
    assert not (tmp_path / "out").exists()


def test_cli_and_auto_levels(sample, tmp_path):
    root = sample[0]
    rc = main(
        ["export-ome-zarr", str(root / "tomogram.mrc"), str(tmp_path / "o"),
         "--labels", str(root / "labels.mrc")]
    )  # fmt: skip
    assert rc == 0
    nodes = ngff.read_levels(tmp_path / "o" / "tomogram.ome.zarr")
    assert len(nodes["tomogram"]["levels"]) == ngff.auto_levels(SHAPE) == 2
    assert "labels" in nodes  # named after the file
    assert not (tmp_path / "o" / "probabilities.ome.zarr").exists()


def test_lab_label_table_names_and_colours(sample, tmp_path):
    """A lab's own table (a class the bundled one lacks, another colour) names the labels."""
    root = sample[0]
    table = default_labels().table.copy()
    table.loc[table["name"] == "nucleus", "colour"] = "#123456"
    extra = {"value": 12, "name": "granule", "segment_as": "granule", "parent": "cell"}
    table.loc[len(table)] = {**extra, "colour": "#abcdef"}
    path = tmp_path / "labels.tsv"
    table.to_csv(path, sep="\t", index=False)
    data = np.zeros(SHAPE, np.uint8)
    data[:16] = 4
    data[16:] = 12
    io.write_volume(tmp_path / "seg.mrc", Volume(data, VOXEL))
    rc = main(
        ["export-ome-zarr", str(root / "tomogram.mrc"), str(tmp_path / "o"),
         "--labels", f"segmentation={tmp_path / 'seg.mrc'}", "--label-table", str(path)]
    )  # fmt: skip
    assert rc == 0
    seg = ngff.read_levels(tmp_path / "o" / "tomogram.ome.zarr")["segmentation"]
    assert seg["properties"][12]["name"] == "granule"
    np.testing.assert_allclose(seg["colors"][12], np.array(ngff.rgba("#abcdef")) / 255)
    np.testing.assert_allclose(seg["colors"][4], np.array(ngff.rgba("#123456")) / 255)
