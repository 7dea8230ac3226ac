"""Fault injection (issue 15): a read-only results directory and a full disk end in one
named error and leave no partial file; the next write of an output removes the temporaries a
killed writer left."""

import contextlib
import os
import resource
import signal
import socket
import stat
import subprocess
import sys

import pytest

from sxtflow.cli import main
from sxtflow.io import atomic_path

# --------------------------------------------------------------------------- read-only, full disk


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault_inputs")
    sim = ["--shape", "32,48,48", "--voxel-nm", "100", "--n-angles", "48", "--seed", "2"]
    assert main(["simulate", str(d / "p.h5"), str(d / "truth.mrc"), str(d / "lac.mrc"), *sim]) == 0
    assert main(["reconstruct", str(d / "p.h5"), str(d / "tomo.mrc")]) == 0
    return d


@contextlib.contextmanager
def _tmpfs(path, options):
    """Mount a tmpfs at ``path`` (root only); skip the test where that is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def read_only_dir(path):
    """A directory no process of ours can write to: chmod 555, or (root ignores modes) a
    read-only tmpfs holding an older result."""
    if os.geteuid() != 0:
        path.mkdir()
        (path / "tomo.mrc").write_bytes(b"older result")
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        try:
            yield path
        finally:
            path.chmod(stat.S_IRWXU)
    else:
        with _tmpfs(path, "size=1m"):
            (path / "tomo.mrc").write_bytes(b"older result")
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
            yield path


COMMANDS = {  # command → (argv, OUT = the output, its name, file-size limit): a writer of each kind
    "reconstruct (MRC)": (["reconstruct", "{d}/p.h5", "OUT"], "tomo.mrc", 64),
    "features (zarr store)": (["features", "{d}/tomo.mrc", "OUT", "--sigmas", "1"], "f.zarr", 64),
    "simulate (HDF5)": (
        [
            "simulate",
            "OUT",
            "{d}/t2.mrc",
            "{d}/l2.mrc",
            "--shape",
            "32,48,48",
            "--voxel-nm",
            "100",
            "--n-angles",
            "48",
            "--seed",
            "2",
        ],
        "p.h5",
        350,
    ),
}  # fmt: skip  (the simulated volumes, 296 kB, fit 350 kB; its projections, 435 kB, do not)


def _cli(argv, preexec=None):
    cmd = [sys.executable, "-m", "sxtflow.cli", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=preexec)


def _assert_named_and_clean(proc, out, reason):
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert last.startswith(f"sxtflow: error: {out}: cannot write this output: {reason}"), last
    leftovers = [p.name for p in out.parent.iterdir() if p.name not in ("tomo.mrc",)]
    assert not leftovers, f"partial files left: {leftovers}"
    if out.name == "tomo.mrc":
        assert out.read_bytes() == b"older result"


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_results_directory_is_a_named_error(inputs, tmp_path, command):
    argv, name, _ = COMMANDS[command]
    with read_only_dir(tmp_path / "results") as results:
        out = results / name
        proc = _cli([a.format(d=inputs) if a != "OUT" else str(out) for a in argv])
        reason = "read-only file system" if os.geteuid() == 0 else "permission denied"
        _assert_named_and_clean(proc, out, reason)


def _file_size_limit(nbytes):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))

    return preexec


@pytest.mark.parametrize("how", ["tmpfs", "file size limit"])
@pytest.mark.parametrize("command", COMMANDS)
def test_full_disk_is_a_named_error_without_partial_file(inputs, tmp_path, command, how):
    argv, name, kb = COMMANDS[command]
    results = tmp_path / "results"
    with contextlib.ExitStack() as stack:
        if how == "tmpfs":  # a tiny file system that fills up
            stack.enter_context(_tmpfs(results, "size=64k"))
            preexec, reason = None, "no space left on the device"
        else:  # any user: the process may not write files beyond 64 kB
            results.mkdir()
            preexec, reason = _file_size_limit(kb * 1024), "file too large"
        (results / "tomo.mrc").write_bytes(b"older result")
        out = results / name
        proc = _cli([a.format(d=inputs) if a != "OUT" else str(out) for a in argv], preexec)
        _assert_named_and_clean(proc, out, reason)


# --------------------------------------------------------------------------- debris


def test_rerun_removes_temporaries_of_a_killed_writer(tmp_path):
    target = tmp_path / "probabilities.zarr"
    host = socket.gethostname()
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in host)[:40]
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    stale = tmp_path / f".probabilities.zarr.{dead}@{host}.abcd1234.tmp"
    legacy = tmp_path / ".probabilities.zarr.k2j4h5g6.tmp"  # before temporaries named owners
    live = tmp_path / f".probabilities.zarr.{os.getpid()}@{host}.zzzz9999.tmp"
    elsewhere = tmp_path / f".probabilities.zarr.{dead}@another-node.yyyy8888.tmp"
    other = tmp_path / f".prediction.mrc.{dead}@{host}.abcd1234.tmp.mrc"
    for p in (stale, legacy, live, elsewhere):
        (p / "probabilities").mkdir(parents=True)
    other.write_bytes(b"x")
    with atomic_path(target, directory=True) as tmp:
        tmp.mkdir()
    assert not stale.exists() and not legacy.exists()
    assert live.exists() and elsewhere.exists() and other.exists()  # not stale, or not its output
    with atomic_path(tmp_path / "prediction.mrc") as tmp:
        tmp.write_bytes(b"y")
    assert not other.exists()
