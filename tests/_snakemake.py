"""Running the workflow from tests: one ``snakemake`` subprocess per call, like a user's.

Each run is a fresh process (as on a cluster, where every job re-reads the Snakefile), and the
CLI is what picks up the workflow profile ``profiles/default`` (rerun triggers), so the tests
see the policy users get.
"""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"


def snakemake(
    workdir, *args, snakefile=None, config="config.yaml", cores=2, check=True, timeout=None
):
    """Run ``snakemake`` on ``workdir`` with its ``config``; raise with the log tail on failure.

    ``cores=None`` leaves the core count to the profile (cluster runs).
    """
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile or ROOT / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(Path(workdir) / config),
    ]  # fmt: skip
    if cores is not None:
        cmd += ["--cores", str(cores)]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def make_workdir(path, sheet_text=None):
    """A working directory with the tiny test config and sample sheet (or ``sheet_text``)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(DATA / "tiny_config.yaml", path / "config.yaml")
    (path / "samples.tsv").write_text(sheet_text or (DATA / "tiny_samples.tsv").read_text())
    return path


def planned_jobs(workdir, *, snakefile=None, config="config.yaml"):
    """``{rule: count}`` of the jobs a dry-run would run."""
    out = snakemake(
        workdir, "-n", "--quiet", "rules", cores=1, snakefile=snakefile, config=config
    ).stdout
    counts = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts
