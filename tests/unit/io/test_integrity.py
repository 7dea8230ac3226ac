"""Integrity of what the pipeline writes (issue 15): completion records of zarr stores,
training that refuses a model at chance or from a store replaced under it, byte-identical
rewrites (MRC, skops), and a rerun that cleans up what a killed run left."""

import json
import shutil

import numpy as np
import pytest
from _cells import sha, tiny_cell

from sxtflow import segment, stages
from sxtflow.io import (
    INTEGRITY_RECORD,
    InputError,
    Volume,
    read_meta,
    read_volume,
    seal_store,
    verify_store,
    write_volume,
)
from sxtflow.segment import FeatureSpec, open_features, write_features


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny cell: tomogram, annotation and a feature store of 2 chunks along z (~2 s)."""
    d = tmp_path_factory.mktemp("integrity")
    return d, tiny_cell(d, features=["--block", "16,48,48"], until="features")


def chunk_files(store):
    return sorted(
        p for p in (store / "features").rglob("*") if p.is_file() and p.name != "zarr.json"
    )


def train(f, store, model, **kw):
    return stages.run_train([store], [f["ann"]], model, classes=_classes(), n_estimators=8, **kw)


def _classes():
    from sxtflow.labels import default_labels
    from sxtflow.options import DEFAULTS

    return default_labels().class_values(DEFAULTS["classes"])


# --------------------------------------------------------------------------- stores


def test_store_carries_a_completion_record_written_last(made):
    d, f = made
    record = verify_store(f["feat"])
    spec = record["arrays"]["features"]
    assert spec["n_chunks"] == 2 and spec["shape"][1:] == [32, 48, 48]
    assert len(chunk_files(f["feat"])) == 2
    assert record["checksum"].startswith("sha256:")
    # written last: every other file of the store is older or as old
    rec_time = (f["feat"] / INTEGRITY_RECORD).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= rec_time for p in f["feat"].rglob("*") if p.is_file())


def test_missing_chunk_is_refused_not_read_as_zeros(made, tmp_path):
    d, f = made
    store = tmp_path / "f.zarr"
    shutil.copytree(f["feat"], store)
    victim = chunk_files(store)[1]
    victim.unlink()
    with pytest.raises(InputError) as err:
        open_features(store)
    assert err.value.path == str(store) and "is missing" in err.value.problem
    assert victim.relative_to(store).as_posix() in err.value.problem
    model = tmp_path / "m.skops"
    with pytest.raises(InputError, match="is missing"):
        train(f, store, model)
    assert not model.exists() and not model.with_suffix(".json").exists()


def test_changed_chunk_and_partial_store_are_refused(made, tmp_path):
    d, f = made
    store = tmp_path / "f.zarr"
    shutil.copytree(f["feat"], store)
    victim = chunk_files(store)[0]
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="has changed"):
        open_features(store)
    (store / INTEGRITY_RECORD).unlink()  # as a write killed before its record
    with pytest.raises(InputError, match="no completion record.*partial store"):
        open_features(store)


def test_probability_store_is_sealed_and_verified(made, tmp_path):
    d, f = made
    model = tmp_path / "m.skops"
    train(f, f["feat"], model)
    probs = tmp_path / "probabilities.zarr"
    stages.run_predict(f["tomo"], model, tmp_path / "pred.mrc", out_probabilities=probs,
                       block=(16, 48, 48))  # fmt: skip
    record = verify_store(probs)
    assert record["arrays"]["probabilities"]["n_chunks"] == 2
    # every chunk is stored, also the all-zero ones outside the field of view
    files = [
        p for p in (probs / "probabilities").rglob("*") if p.is_file() and p.name != "zarr.json"
    ]
    assert len(files) == 2
    files[0].unlink()
    with pytest.raises(InputError, match="is missing"):
        verify_store(probs)


def test_sealing_refuses_a_store_with_an_unwritten_chunk(tmp_path):
    from sxtflow.io import create_zarr_array

    arr = create_zarr_array(tmp_path / "s.zarr", "a", (4, 8), (4, 4))
    arr[:, :4] = 1.0  # the second chunk is never written
    with pytest.raises(ValueError, match="has 1 of 2 chunks"):
        seal_store(tmp_path / "s.zarr")


# --------------------------------------------------------------------------- training guards


def test_training_refuses_a_model_at_chance(made, tmp_path):
    d, f = made
    # annotations that do not follow the image: labels scattered at random
    ann = read_volume(f["ann"])
    rng = np.random.default_rng(0)
    labelled = np.flatnonzero(ann.data)
    shuffled = ann.data.copy().ravel()
    shuffled[labelled] = rng.permutation(shuffled[labelled])
    noise = np.zeros_like(shuffled)
    noise[rng.permutation(shuffled.size)[: labelled.size]] = shuffled[labelled]
    bad = write_volume(tmp_path / "random.mrc", Volume(noise.reshape(ann.data.shape), ann.voxel_nm))
    model = tmp_path / "m.skops"
    with pytest.raises(InputError) as err:
        stages.run_train([f["feat"]], [bad], model, classes=_classes(), n_estimators=8)
    assert err.value.path == str(bad)
    assert (
        "at chance level for 6 classes" in err.value.problem
        and "model was not written" in err.value.problem
    )
    assert not model.exists()
    # the healthy model records its skill
    card = train(f, f["feat"], model)
    assert card["cv"]["skill"] > 0.5 and model.exists()


def test_training_refuses_a_store_replaced_while_it_read_it(made, tmp_path, monkeypatch):
    # a second run (after a forced --unlock) rewrites the feature store under a running train
    d, f = made
    store = tmp_path / "f.zarr"
    shutil.copytree(f["feat"], store)
    real = segment.train

    def train_while_another_run_writes(*args, **kwargs):
        other = read_volume(f["lac"])  # another volume (the truth LAC) on the same grid
        write_features(store, other, FeatureSpec(sigmas=(1.0, 2.0)), block=(16, 48, 48))
        return real(*args, **kwargs)

    monkeypatch.setattr(segment, "train", train_while_another_run_writes)
    model = tmp_path / "m.skops"
    with pytest.raises(InputError) as err:
        train(f, store, model)
    assert err.value.path == str(store) and "replaced while training read it" in str(err.value)
    assert not model.exists()


# --------------------------------------------------------------------------- bytes


def test_mrc_bytes_do_not_depend_on_the_time(tmp_path, monkeypatch):
    import datetime as dt

    import mrcfile.mrcobject

    class Clock(dt.datetime):
        tick = 0

        @classmethod
        def now(cls, tz=None):
            cls.tick += 1
            return dt.datetime(2020, 1, 1, 0, 0, cls.tick)

    monkeypatch.setattr(mrcfile.mrcobject, "datetime", Clock)
    vol = Volume(np.arange(60, dtype=np.float32).reshape(3, 4, 5), 20.0, {"unit": "1/um"})
    a = write_volume(tmp_path / "a.mrc", vol)
    b = write_volume(tmp_path / "b.mrc", vol)
    assert sha(a) == sha(b)
    import mrcfile

    with mrcfile.open(a) as mrc:
        labels = [bytes(x).decode().strip() for x in mrc.header.label[: int(mrc.header.nlabl)]]
    from sxtflow import __version__

    assert labels[0] == f"Created by sxtflow {__version__}"


def test_model_bytes_are_identical_for_the_same_training(made, tmp_path):
    d, f = made
    train(f, f["feat"], tmp_path / "a.skops")
    train(f, f["feat"], tmp_path / "b.skops")
    assert sha(tmp_path / "a.skops") == sha(tmp_path / "b.skops")
    model, card = segment.load_model(tmp_path / "a.skops")  # and it still loads
    assert card["cv"]["skill"] > 0.5


def test_deterministic_skops_zeroes_padding_and_time(tmp_path):
    import io
    import zipfile

    from sklearn.tree import DecisionTreeClassifier

    X = np.random.default_rng(0).random((50, 3))
    m = DecisionTreeClassifier(random_state=0).fit(X, X[:, 0] > 0.5)
    import skops.io as sio

    out = segment.deterministic_skops(sio.dumps(m))
    zf = zipfile.ZipFile(io.BytesIO(out))
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
    npys = [n for n in zf.namelist() if n.endswith(".npy")]
    assert sorted(npys) == sorted(f"{i}.npy" for i in range(len(npys)))
    checked = 0
    for name in npys:
        fh = io.BytesIO(zf.read(name))  # the stored bytes (np.load would refill the padding)
        version = np.lib.format.read_magic(fh)
        read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_{version[1]}")
        shape, _, dtype = read_header(fh)
        if dtype.fields:  # tree nodes: the padding bytes of every record are zero
            used = np.zeros(dtype.itemsize, bool)
            for field_dtype, offset, *_ in dtype.fields.values():
                used[offset : offset + field_dtype.itemsize] = True
            raw = np.frombuffer(fh.read(), np.uint8).reshape(int(np.prod(shape)), -1)
            assert not used.all() and not raw[:, ~used].any()
            checked += 1
    assert checked


# --------------------------------------------------------------------------- debris


def test_rerun_removes_the_stale_sidecar_of_its_volume(tmp_path):
    path = tmp_path / "prediction.mrc"
    write_volume(path, Volume(np.ones((2, 3, 4), np.uint8), 10.0, {"classes": {"ice": 1}}))
    sidecar = tmp_path / "prediction.mrc.json"
    assert json.loads(sidecar.read_text()) == {"classes": {"ice": 1}}
    path.unlink()  # as Snakemake removes the output of a killed job (not the sidecar)
    write_volume(path, Volume(np.zeros((2, 3, 4), np.uint8), 10.0))
    assert not sidecar.exists() and "classes" not in read_volume(path).meta


def test_a_sidecar_of_another_write_is_ignored(tmp_path, caplog):
    path = tmp_path / "tomogram.mrc"
    write_volume(path, Volume(np.ones((2, 3, 4), np.float32), 10.0, {"ice_lac_per_um": 0.1}))
    stale = {"ice_lac_per_um": 0.5, "unit": "1/um"}  # an earlier write's
    (tmp_path / "tomogram.mrc.json").write_text(json.dumps(stale))
    assert "unit" not in read_volume(path).meta and read_meta(path) == {}
    assert "ignoring the metadata sidecar" in caplog.text
