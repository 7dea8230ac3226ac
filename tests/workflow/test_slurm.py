"""The tiny demo through ``profiles/slurm`` on a live SLURM (marked ``slurm``).

Needs a running scheduler, e.g. the one-node cluster of ``tests/cluster/start-slurm.sh``
(stopped by ``tests/cluster/stop-slurm.sh``), and ``snakemake-executor-plugin-slurm``. Skipped
with the reason otherwise.

The run uses the repository's SLURM profile with exactly these changes, all on the command line
or in a copy of the profile:

* ``--default-resources slurm_partition=<first partition of sinfo>``: the placeholders
  (``<partition>``, ``<account>``) are replaced; there is no account without accounting;
* ``software-deployment-method`` and ``conda-prefix`` are dropped: CI has no conda, jobs run in
  the test's Python environment (sbatch exports it);
* ``--slurm-keep-successful-logs`` so that the per-job SLURM logs can be checked;
* ``--slurm-init-seconds-before-status-checks 7`` (the default, 40 s, makes a chain of ten
  short jobs slow; 3 x 7 s stays below ``MinJobAge=300``, so ``squeue`` is really used).

``slurm-status-command: squeue`` comes from the profile itself (accounting is off).
"""

import filecmp
import re
import shutil
import subprocess

import pytest
import yaml
from _snakemake import ROOT, make_workdir, planned_jobs, snakemake


def _sinfo_partition():
    """First partition of ``sinfo`` (``None`` when no scheduler answers)."""
    if shutil.which("sinfo") is None:
        return None
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.split() for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        return None
    return lines[0][0].rstrip("*")


def _have_plugin():
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return False
    return True


def _have_generic_plugin():
    try:
        import snakemake_executor_plugin_cluster_generic  # noqa: F401
    except ImportError:
        return False
    return True


PARTITION = _sinfo_partition()

CLUSTER_PROFILES = sorted((ROOT / "profiles").glob("cluster-generic/*/config.yaml"))


def executed_jobs(log_text):
    """``{(rule, wildcards)}`` a SLURM job executed: the job step prints ``localrule`` blocks."""
    jobs = set()
    for block in re.split(r"\n(?=localrule \w+:)", log_text):
        head = re.match(r"localrule (\w+):", block)
        if head:
            wildcards = re.search(r"^ +wildcards: (.*)$", block.split("\n\n")[0], flags=re.M)
            jobs.add((head.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def test_profile_placeholders_are_documented():
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    defaults = profile["default-resources"]
    assert defaults["slurm_partition"] == "<partition>"
    assert "mem_mb_per_cpu" not in defaults  # would override every rule's mem_mb
    assert profile["slurm-status-command"] == "squeue"


@pytest.mark.parametrize("path", CLUSTER_PROFILES, ids=lambda p: p.parent.name)
def test_cluster_generic_profiles_share_the_calibrated_resources(path):
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    generic = yaml.safe_load(path.read_text())
    for key in ("set-resources", "groups", "group-components", "retries", "rerun-triggers"):
        assert generic[key] == slurm[key], f"{path}: {key} differs from profiles/slurm"
    status = path.parent / generic["cluster-generic-status-cmd"]
    assert status.is_file() and status.stat().st_mode & 0o111, f"{status} is not executable"
    assert "{resources.mem_mb}" in generic["cluster-generic-submit-cmd"]
    assert "{resources.runtime}" in generic["cluster-generic-submit-cmd"]


def test_every_rule_has_calibrated_resources():
    slurm = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    rules = set()
    for smk in (ROOT / "workflow/rules").glob("*.smk"):
        rules |= set(re.findall(r"^rule (\w+):", smk.read_text(), flags=re.M))
    assert set(slurm["set-resources"]) == rules
    for rule, res in slurm["set-resources"].items():
        assert str(res["mem_mb"]).startswith("attempt *"), rule  # more memory on each retry
        assert {"mem_mb", "runtime"} <= set(res), rule


@pytest.mark.slurm
@pytest.mark.workflow  # end to end and slow: not in the quick suite (-m "not workflow")
@pytest.mark.skipif(
    PARTITION is None,
    reason="no SLURM scheduler answers `sinfo` (start one: sudo tests/cluster/start-slurm.sh)",
)
@pytest.mark.skipif(
    not _have_plugin(), reason="snakemake-executor-plugin-slurm is not installed (pip install it)"
)
def test_tiny_demo_through_slurm_matches_local(tmp_path):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    for key in ("software-deployment-method", "conda-prefix"):
        profile.pop(key, None)
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile/config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))

    cluster = make_workdir(tmp_path / "slurm")
    planned = planned_jobs(cluster)
    proc = snakemake(
        cluster, "--profile", str(tmp_path / "profile"),
        "--default-resources", f"slurm_partition={PARTITION}",
        "--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "7",
        cores=None, timeout=1800,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert "Falling back to 'sacct'" not in text  # squeue really used (MinJobAge is enough)
    assert re.search(r"(\d+) of \1 steps \(100%\) done", text), text[-3000:]

    # every job but the target went through sbatch: one SLURM job id per submission, a SLURM
    # log per id, and the rules finished inside those logs are exactly the planned ones
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    assert submitted and len(set(submitted)) == len(submitted)
    assert re.findall(r"^localrule (\w+):", text, flags=re.M) == ["all"]
    logs = {p.stem: p for p in (cluster / ".snakemake/slurm_logs").rglob("*.log")}
    assert set(submitted) == set(logs), (submitted, sorted(logs))
    executed = set()
    for jobid in submitted:
        inside = executed_jobs(logs[jobid].read_text())
        assert inside, f"SLURM job {jobid} ran nothing: {logs[jobid]}"
        executed |= inside
    ran = {}
    for rule, _ in executed:
        ran[rule] = ran.get(rule, 0) + 1
    assert ran == {k: v for k, v in planned.items() if k != "all"}

    # the same tables as a local run
    home = make_workdir(tmp_path / "local")
    snakemake(home, timeout=1800)
    names = sorted(
        str(p.relative_to(home))
        for p in (home / "results").rglob("*.tsv")
        if "benchmarks" not in p.parts
    )
    assert len(names) >= 8
    _, mismatch, errors = filecmp.cmpfiles(home, cluster, names, shallow=False)
    assert not mismatch and not errors, f"SLURM and local tables differ: {mismatch + errors}"


@pytest.mark.slurm
@pytest.mark.workflow
@pytest.mark.skipif(
    PARTITION is None,
    reason="no SLURM scheduler answers `sinfo` (start one: sudo tests/cluster/start-slurm.sh)",
)
@pytest.mark.skipif(
    not _have_generic_plugin(),
    reason="snakemake-executor-plugin-cluster-generic is not installed (pip install it)",
)
def test_cluster_generic_sbatch_and_status_script(tmp_path):
    # the first two steps of one cell (simulate, reconstruct) through sbatch + status.sh
    profile = yaml.safe_load((ROOT / "profiles/cluster-generic/slurm/config.yaml").read_text())
    for key in ("software-deployment-method", "conda-prefix"):
        profile.pop(key, None)
    (tmp_path / "profile").mkdir()
    shutil.copy(ROOT / "profiles/cluster-generic/slurm/status.sh", tmp_path / "profile")
    (tmp_path / "profile/config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    work = make_workdir(tmp_path / "generic")
    proc = snakemake(
        work, "--profile", str(tmp_path / "profile"),
        "--default-resources", f"partition={PARTITION}", "--", "results/c1/tomogram.mrc",
        cores=None, timeout=1800,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    ids = re.findall(r"with external jobid '(\d+)'", text)
    assert len(ids) == 2, text[-3000:]  # simulate (its group), reconstruct
    assert {p.stem for p in (work / "logs/cluster").glob("*.out")} == set(ids)
    assert (work / "results/c1/tomogram.mrc").stat().st_size > 0
