"""Running the workflow from tests: one ``snakemake`` subprocess per call, like a user's.

Each run is a fresh process (as on a cluster, where every job re-reads the Snakefile), and the
CLI is what picks up the workflow profile ``profiles/default`` (rerun triggers), so the tests
see the policy users get.
"""

import hashlib
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

    ``cores=None`` leaves the core count to the profile (cluster runs); ``config=None`` passes
    no config file (keys then come from ``--config`` in ``args`` and the defaults).
    """
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile or ROOT / "Snakefile"),
        "--directory", str(workdir),
    ]  # fmt: skip
    if config is not None:
        cmd += ["--configfile", str(Path(workdir) / config)]
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


def make_micro_workdir(path, sheet_text=None):
    """A working directory with the smallest config (``micro_config.yaml``, ~20 jobs)."""
    path = make_workdir(path, sheet_text)
    shutil.copy(DATA / "micro_config.yaml", path / "config.yaml")
    return path


def digests(workdir):
    """sha256 of every file under results/ but the benchmarks (timings), by relative path."""
    res = Path(workdir) / "results"
    return {
        p.relative_to(workdir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(res.rglob("*"))
        if p.is_file() and "benchmarks" not in p.relative_to(res).parts
    }


def planned_jobs(workdir, *, snakefile=None, config="config.yaml"):
    """``{rule: count}`` of the jobs a dry-run would run."""
    out = snakemake(
        workdir, "-n", "--quiet", "rules", cores=1, snakefile=snakefile, config=config
    ).stdout
    return _job_counts(out)


def _job_counts(text):
    """``{rule: count}`` from Snakemake's job-stats table(s) (``job  count`` ... ``total``)."""
    counts, inside = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts == ["job", "count"]:
            inside = True
        elif inside and parts[:1] == ["total"]:
            inside = False
        elif inside and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def api_planned_jobs(workdir, *, snakefile=None, config="config.yaml"):
    """``{rule: count}`` of a dry-run planned in-process through Snakemake's Python API.

    The API does not read profiles, so the workflow profile's rerun policy
    (``profiles/default/config.yaml``: mtime, params, input) is passed explicitly.
    """
    import io
    import logging

    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness, RerunTrigger
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    # the job-stats table is logged through the "snakemake" logger: listen to it directly
    # (its own handlers are bound to the streams of the first call in this process)
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("snakemake")
    logger.addHandler(handler)
    triggers = {RerunTrigger.MTIME, RerunTrigger.PARAMS, RerunTrigger.INPUT}
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.PROGRESS})) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=[Path(workdir) / config]),
                storage_settings=StorageSettings(),
                snakefile=Path(snakefile or ROOT / "Snakefile"),
                workdir=Path(workdir),
            )
            dag = workflow.dag(dag_settings=DAGSettings(rerun_triggers=triggers))
            dag.execute_workflow(executor="dryrun")
    finally:
        logger.removeHandler(handler)
    return _job_counts(buf.getvalue())
