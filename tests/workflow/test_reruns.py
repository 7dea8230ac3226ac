"""Rerun policy of the workflow on the tiny config (marked ``workflow``).

Policy (profiles/default/config.yaml, picked up next to the Snakefile):
``rerun-triggers: [mtime, params, input]``. A new sample reruns only its own jobs plus the
aggregations; a changed parameter reruns exactly the rules that read it and their dependants; a
change of a rule's code (a comment in a script) reruns nothing; the same inputs, config and seed
give byte-identical outputs (every file under results/ but the benchmark timings).

The workflow is copied (Snakefile, workflow/, profiles/, config/, envs/; src/ linked) into a temp dir so
that a script can be edited without touching the repository.
"""

import filecmp
import shutil

import pytest
import yaml
from _snakemake import (
    ROOT,
    api_planned_jobs,
    digests,
    make_micro_workdir,
    make_workdir,
    planned_jobs,
    snakemake,
)

pytestmark = pytest.mark.workflow

# jobs of one new, unannotated sample (features are computed only for annotated samples:
# prediction computes them per block from the tomogram)
PER_SAMPLE = (
    "simulate", "reconstruct", "predict", "refine", "evaluate", "mesh", "measure", "chromatin",
)  # fmt: skip


def copy_workflow(dest):
    """A private copy of the pipeline code; ``src`` is a symlink (scripts import it from there)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Snakefile", dest / "Snakefile")
    for sub in ("workflow", "profiles", "config", "envs"):
        shutil.copytree(ROOT / sub, dest / sub, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "src").symlink_to(ROOT / "src", target_is_directory=True)
    return dest


def tables(workdir):
    """Relative paths of every result table (benchmarks hold timings and are left out)."""
    res = workdir / "results"
    return sorted(p.relative_to(workdir) for p in res.rglob("*.tsv") if "benchmarks" not in p.parts)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("reruns")
    snakefile = copy_workflow(base / "wf") / "Snakefile"
    work = make_workdir(base / "run")
    snakemake(work, snakefile=snakefile)
    return snakefile, work


def test_finished_run_is_complete(finished):
    # the baseline for the tests below: nothing left to do
    snakefile, work = finished
    assert planned_jobs(work, snakefile=snakefile) == {}


def test_appending_a_sample_runs_only_it_plus_aggregation(finished):
    snakefile, work = finished
    sheet = (work / "samples.tsv").read_text()
    (work / "samples.tsv").write_text(sheet + "c2\tcontrol\tsimulate\t\tyeast\t\t\t\n")
    try:
        counts = planned_jobs(work, snakefile=snakefile)
    finally:
        (work / "samples.tsv").write_text(sheet)
    expected = dict.fromkeys(PER_SAMPLE, 1) | {"compare": 1, "evaluation_table": 1, "all": 1}
    assert counts == expected


def test_inserting_a_sample_first_runs_only_it_plus_aggregation(finished):
    snakefile, work = finished
    sheet = (work / "samples.tsv").read_text()
    header, body = sheet.split("\n", 1)
    (work / "samples.tsv").write_text(f"{header}\na0\tcontrol\tsimulate\t\tyeast\t\t\t\n{body}")
    try:
        counts = planned_jobs(work, snakefile=snakefile)
    finally:
        (work / "samples.tsv").write_text(sheet)
    expected = dict.fromkeys(PER_SAMPLE, 1) | {"compare": 1, "evaluation_table": 1, "all": 1}
    assert counts == expected


def changed_config(work, name, edit, *, sort_keys=False):
    """Write ``work/name``: the run's config after ``edit(cfg)``; return ``name``."""
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    edit(cfg)
    (work / name).write_text(yaml.safe_dump(cfg, sort_keys=sort_keys))
    return name


def more_smoothing(cfg):
    cfg["mesh"]["smooth_iterations"] += 5


def test_parameter_change_reruns_exactly_its_dependants(finished):
    snakefile, work = finished
    config = changed_config(work, "changed.yaml", more_smoothing)
    counts = planned_jobs(work, snakefile=snakefile, config=config)
    # mesh reads the option, measure reads it too (surface areas); compare aggregates measure
    assert counts == {"mesh": 2, "measure": 2, "compare": 1, "all": 1}


def test_python_api_plans_the_same_reruns(finished):
    # the same policy through Snakemake's Python API (in-process), as a pipeline embedding
    # sxtflow would drive it: a finished run plans nothing, a mesh option its dependants
    snakefile, work = finished
    assert api_planned_jobs(work, snakefile=snakefile) == {}
    config = changed_config(work, "changed_api.yaml", more_smoothing)
    counts = api_planned_jobs(work, snakefile=snakefile, config=config)
    assert counts == {"mesh": 2, "measure": 2, "compare": 1, "all": 1}


def test_upstream_parameter_change_reruns_the_chain(finished):
    snakefile, work = finished

    def stricter_vacuoles(cfg):
        cfg["refine"]["vacuole"]["min_volume_um3"] *= 2

    config = changed_config(work, "changed_up.yaml", stricter_vacuoles)
    counts = planned_jobs(work, snakefile=snakefile, config=config)
    downstream = {"refine": 2, "evaluate": 2, "mesh": 2, "measure": 2, "chromatin": 2}
    assert counts == downstream | {"compare": 1, "evaluation_table": 1, "all": 1}


def test_reordering_config_keys_reruns_nothing(finished):
    snakefile, work = finished
    config = changed_config(work, "sorted.yaml", lambda cfg: None, sort_keys=True)
    assert planned_jobs(work, snakefile=snakefile, config=config) == {}


def test_comment_in_a_script_reruns_nothing(finished):
    snakefile, work = finished
    script = snakefile.parent / "workflow" / "scripts" / "reconstruct.py"
    script.write_text(script.read_text() + "\n# a comment added after the run\n")
    try:
        assert planned_jobs(work, snakefile=snakefile) == {}
    finally:
        script.write_text(script.read_text().replace("\n# a comment added after the run\n", ""))


def test_same_inputs_config_seed_give_identical_outputs(finished, tmp_path):
    snakefile, first = finished
    second = make_workdir(tmp_path / "again")
    snakemake(second, snakefile=snakefile)
    names = tables(first)
    assert names == tables(second)
    assert len(names) >= 8  # per-sample, evaluation and comparison tables
    _, mismatch, errors = filecmp.cmpfiles(first, second, [str(n) for n in names], shallow=False)
    assert not mismatch and not errors, f"tables differ between two runs: {mismatch + errors}"
    # every output, byte for byte (MRC headers without a time, deterministic skops archives,
    # zarr stores with their completion records); benchmarks hold timings
    sums = digests(first)
    assert sums.keys() == digests(second).keys() and len(sums) > 80
    differ = sorted(k for k, v in digests(second).items() if sums[k] != v)
    assert not differ, f"outputs differ between two runs: {differ}"
    assert not [k for k in sums if ".tmp" in k], "temporary files left behind"


def test_config_threads_set_the_jobs_threads(tmp_path):
    # config `threads` decides the multi-threaded rules' threads (the demo: 1 for
    # reconstruct, predict, refine); the rest keep theirs, and a dry run lists them
    work = make_micro_workdir(tmp_path)
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["threads"] = {"predict": 1, "refine": 3}
    (work / "threads.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, "-n", config="threads.yaml", cores=4).stdout
    threads, rule = {}, None
    for line in out.splitlines():
        if line.startswith(("rule ", "localrule ")):
            rule = line.split()[1].rstrip(":")
            threads.setdefault(rule, 1)
        elif rule and line.strip().startswith("threads:"):
            threads[rule] = int(line.split()[1])
    assert threads["predict"] == 1 and threads["refine"] == 3
    assert threads["reconstruct"] == 2 and threads["train"] == 2 and threads["simulate"] == 1
