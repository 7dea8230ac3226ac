"""Planning cost of a large study: ``snakemake -n`` on a generated 2,000-tomogram sample sheet.

Writes a sample sheet of N simulated cells (two conditions, a few annotated) and the tiny test
config into a temp dir, then times, in one run:

* parsing as a cluster job does it (``--mode remote --list-rules``): every job re-reads the
  Snakefile and the sample sheet; the same for a one-rule Snakefile, so the difference is
  the cost of *this* workflow and sample sheet, apart from Snakemake's own start-up;
* a full dry-run (``-n --quiet rules``): the DAG of the whole study.

CPU seconds are printed beside wall seconds: on a shared machine they are the robust
number (and Snakemake's SLURM plugin, when installed, waits on ``scontrol`` at start-up when
no SLURM is running, which adds wall time but no CPU).

Usage: ``python benchmarks/dryrun.py [N=2000]``. Prints seconds, jobs and the cost per job.
"""

import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
HEADER = "sample\tcondition\tkind\tinput\tcell_type\tvoxel_nm\tannotation\ttruth\n"


def write_study(work: Path, n: int, n_annotated: int = 4) -> None:
    """Sample sheet of ``n`` simulated cells (half per condition) plus the tiny config."""
    rows = []
    for i in range(n):
        condition = "control" if i % 2 == 0 else "lipid_rich"
        annotation = "auto" if i < n_annotated else ""
        rows.append(f"cell{i:05d}\t{condition}\tsimulate\t\tyeast\t\t{annotation}\t\n")
    (work / "samples.tsv").write_text(HEADER + "".join(rows))
    shutil.copy(DATA / "tiny_config.yaml", work / "config.yaml")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


TRIVIAL = 'rule a:\n    output:\n        "a.txt",\n    shell:\n        "touch {output}"\n'


def snakemake(work: Path, *args: str, snakefile: Path | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (the CPU time is robust on a shared machine) and the output."""
    if snakefile is None:
        snakefile = ROOT / "Snakefile"
        args = ("--configfile", str(work / "config.yaml"), *args)
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(snakefile),
        "--directory", str(work), "--cores", "2", *args,
    ]  # fmt: skip
    t0, c0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return seconds, cpu, proc.stdout + proc.stderr


def main(n: int = 2000) -> None:
    with tempfile.TemporaryDirectory(prefix="sxt-dryrun-") as tmp:
        work = Path(tmp)
        write_study(work, n)
        trivial = work / "trivial.smk"
        trivial.write_text(TRIVIAL)
        job = ("--mode", "remote", "--list-rules")
        parse = [snakemake(work, *job) for _ in range(3)]
        base = [snakemake(work, *job, snakefile=trivial) for _ in range(3)]
        parse_s, parse_cpu = min(p[0] for p in parse), min(p[1] for p in parse)
        base_cpu = min(b[1] for b in base)
        plan_s, plan_cpu, out = snakemake(work, "-n", "--quiet", "rules")
        total = re.search(r"^total\s+(\d+)", out, flags=re.M)
        jobs = int(total.group(1)) if total else 0
        print(f"tomograms: {n}")
        print(
            f"parse as a cluster job (best of 3): {parse_s:.2f} s wall, {parse_cpu:.2f} s CPU; "
            f"a one-rule Snakefile: {base_cpu:.2f} s CPU; "
            f"this workflow + sheet: {parse_cpu - base_cpu:.2f} s CPU per job"
        )
        print(f"dry-run (-n, whole DAG): {plan_s:.2f} s wall, {plan_cpu:.2f} s CPU, {jobs} jobs")
        if jobs:
            print(
                f"planning cost per job: {1000 * plan_s / jobs:.2f} ms wall, {1000 * plan_cpu / jobs:.2f} ms CPU"
            )
            print(
                f"planning cost per tomogram: {1000 * plan_s / n:.2f} ms wall, {1000 * plan_cpu / n:.2f} ms CPU"
            )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
