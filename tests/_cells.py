"""One tiny simulated cell taken through the CLI stages, for tests that need real files."""

import hashlib
from pathlib import Path

from sxtflow.cli import main

NAMES = {
    "proj": "p.h5", "truth": "truth.mrc", "lac": "lac.mrc", "ann": "ann.mrc",
    "tomo": "tomo.mrc", "feat": "f.zarr", "model": "m.skops", "pred": "pred.mrc",
}  # fmt: skip


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tiny_cell(d, *, features=(), until="reconstruct"):
    """Simulate a 32×48×48 cell of 100 nm voxels in ``d``, annotate and reconstruct it, and
    go on ``until`` ``"features"`` (options ``features``), ``"train"`` or ``"predict"``
    (~1-3 s). Returns ``{name: path}`` (:data:`NAMES`)."""
    f = {k: Path(d) / v for k, v in NAMES.items()}
    sim = ["--shape", "32,48,48", "--voxel-nm", "100", "--n-angles", "48", "--seed", "2"]
    steps = [
        ["simulate", f["proj"], f["truth"], f["lac"], *sim],
        ["annotate", f["truth"], f["ann"], "--seed", "1"],
        ["reconstruct", f["proj"], f["tomo"]],
        ["features", f["tomo"], f["feat"], "--sigmas", "1,2", *features],
        ["train", "--features", f["feat"], "--annotations", f["ann"], "--n-estimators", "8",
         "--model", f["model"]],
        ["predict", f["tomo"], f["model"], f["pred"]],
    ]  # fmt: skip
    last = ["simulate", "annotate", "reconstruct", "features", "train", "predict"].index(until)
    for argv in steps[: last + 1]:
        assert main([str(a) for a in argv]) == 0, argv
    return f
