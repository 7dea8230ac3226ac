"""Fault injection (issue 15): ``kill -9`` at random points followed by the README's resume
gives the outputs of an uninterrupted run, byte for byte; a read-only results directory and
a full disk end in one named error and leave no partial file; the next write of an output
removes the temporaries a killed writer left.

The workflow run uses the smallest config (``tests/data/micro_config.yaml``, ~20 jobs), and
one uninterrupted reference run.
"""

import contextlib
import os
import random
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cells import tiny_cell
from _snakemake import ROOT, digests, make_micro_workdir, snakemake

from sxtflow.io import atomic_path

RUN_TIMEOUT = 900  # seconds; a run of the micro config takes ~30-60 s on 2 cores

# --------------------------------------------------------------------------- kill -9


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = make_micro_workdir(tmp_path_factory.mktemp("reference"))
    snakemake(work, timeout=RUN_TIMEOUT)
    return digests(work)


def _job_processes(parent):
    """Running rule scripts (``python .snakemake/scripts/…``) below the snakemake process."""
    import psutil

    jobs = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(parent).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if any(".snakemake/scripts/" in a for a in child.cmdline()):
                    jobs.append(child)
    return jobs


def _kill_at_random(proc, rng, whole):
    """Wait for a random job of this run to start, let it run a random while, then
    ``kill -9`` it (or, with ``whole``, snakemake and every job: a crashed node)."""
    target = rng.randint(1, 6)  # the n-th job this run starts
    started = set()
    deadline = time.monotonic() + RUN_TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        started.update(job.pid for job in _job_processes(proc.pid))
        if len(started) >= target:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.5))
    assert proc.poll() is None, "the run ended before it could be killed"
    jobs = _job_processes(proc.pid)
    if whole or not jobs:
        os.killpg(proc.pid, signal.SIGKILL)
        what = f"snakemake and {len(jobs)} job(s) after {len(started)} started"
    else:
        job = rng.choice(jobs)
        what = f"job {Path(job.cmdline()[-1]).name} after {len(started)} started"
        os.kill(job.pid, signal.SIGKILL)
    proc.wait(timeout=RUN_TIMEOUT)
    return what


@pytest.mark.workflow
def test_kill_9_at_random_points_then_resume_gives_identical_outputs(reference, tmp_path):
    # three kills in a row (seeds 0, 1, 2), each of the run resumed after the previous one:
    # the whole run (a crashed node), one job (OOM killer), the whole run again
    work = make_micro_workdir(tmp_path / "run")
    killed = []
    for seed in (0, 1, 2):
        rng = random.Random(seed)
        if seed:  # the README's resume: unlock (the killed run's lock is left), rerun
            snakemake(work, "--unlock", timeout=RUN_TIMEOUT)
        cmd = [
            sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
            "--directory", str(work), "--configfile", str(work / "config.yaml"), "--cores",
            "2", *(["--rerun-incomplete"] if seed else []),
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            killed.append(_kill_at_random(proc, rng, whole=seed != 1))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode != 0, killed
    snakemake(work, "--unlock", timeout=RUN_TIMEOUT)
    snakemake(work, "--rerun-incomplete", timeout=RUN_TIMEOUT)
    got = digests(work)
    assert got.keys() == reference.keys(), (killed, sorted(got.keys() ^ reference.keys()))
    differ = sorted(k for k in got if got[k] != reference[k])
    assert not differ, f"after killing {killed} and resuming, outputs differ: {differ}"
    # no debris: no temporary files, no metadata sidecar without its volume
    leftovers = [p for p in (work / "results").rglob("*") if ".tmp" in p.name]
    assert not leftovers, (killed, leftovers)
    orphans = [p for p in (work / "results").rglob("*.mrc.json") if not p.with_suffix("").exists()]
    assert not orphans, (killed, orphans)


# --------------------------------------------------------------------------- read-only, full disk


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("fault_inputs")
    tiny_cell(d)
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
