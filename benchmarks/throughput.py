"""Throughput at real sizes: one cell from raw projections to tables, stage by stage.

The per-cell path of the pipeline (``stages.run_reconstruct`` → ``run_predict`` →
``run_refine`` → ``run_mesh`` / ``run_measure`` / ``run_chromatin``, the functions the Snakemake
rules call, with
the demo config's options) on a simulated lymphocyte (default 512³ voxels of 25 nm, 180
projections over 180°, 3000 photons/pixel, 40 nm zone-plate blur). Every stage runs in a
fresh Python process, so its peak resident memory (``VmHWM``) is its own; wall and CPU time
are the child's: wall inside the stage function (its imports included) and of the whole
process (interpreter start included, as a Snakemake job pays it). Mesh, measure and
chromatin all read only refine's labels and the tomogram and their rules have ``threads: 1``,
so on ``--cores 2`` Snakemake runs two at a time (measure first: ``priority: 1``; then
chromatin, and mesh when chromatin exits); the benchmark does too (``--serial``: one after
the other). Printed: a table of the stages, the per-cell path's wall (process walls; the
three jobs after refine from the first start to the last exit) against the goal of
120 s (and the ratio to the 881 s measured before, issue 14), and peak memory as a multiple
of the float32 tomogram.

Peer, in the same run: scikit-image's trainable segmentation
(``skimage.feature.multiscale_basic_features`` + ``skimage.future.fit_segmenter`` /
``predict_segmenter``) with the same annotations and the same model budget (a random forest
with as many trees as sxtflow's). Its features of a whole 512³ tomogram would not fit in
memory (30 float32 channels: 16 GB), so both are timed on the same central slab of
``--slab`` z-slices (sxtflow reads the slab's halo from the volume: ``predict_volume(...,
region=...)``); the ratio of their voxels per second (wall) and per CPU-second is printed.

``--check-full`` also runs the full-resolution prediction (every voxel, every feature, every
channel filtered exactly; the path before issue 14) on the whole tomogram and prints the
Dice of the fast prediction against it per class (goal: ≥ 0.995) and its time.

``--demo`` (or ``--demo-only``, without the per-cell path) runs the 12-cell demo
(``snakemake --cores 2`` on a copy of the workflow in a temporary directory) and prints its
wall and CPU time, the CPU seconds of each rule and of Snakemake itself (every Python
process of the run records its own at exit through a measurement-only ``sitecustomize`` on
``PYTHONPATH``), and the idle wall these CPU seconds give on 2 cores by a list schedule of
the run's DAG (``snakemake --d3dag``; each job its rule's mean, longest remaining path
first, a ``threads: 2`` job on both cores at a speed-up of 2 or 1.5, Snakemake's own CPU
spread over the cores). Goal: ≤ 180 s wall on 2 idle cores.

Inputs are prepared once and cached under ``--cache`` (default
``~/.cache/sxtflow-bench/throughput``) under a fixed seed: the simulated projections and
truth, the reconstruction used for training, the virtual annotation and the trained model
(extremely randomised trees, 50 of unlimited depth, unweighted; ``FAST_SPEC`` features with
a σ = 8 Gaussian, the segmentation benchmark's lymphocyte settings).

Usage::

    nice -n 10 .venv/bin/python benchmarks/throughput.py                # 512³, the goal
    .venv/bin/python benchmarks/throughput.py --size 192 --voxel-nm 64  # quick, while developing
    .venv/bin/python benchmarks/throughput.py --check-full --demo        # everything
    nice -n 10 .venv/bin/python benchmarks/throughput.py --demo-only      # the demo alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["ice", "cytoplasm", "nucleus", "lipid_droplet", "mitochondrion"]
GOAL_S = 120.0
BEFORE_S = 881.0  # issue 14: reconstruct 38 + predict 697 + refine 27 + mesh 41 + measure 67
STAGES = ("reconstruct", "predict", "refine", "mesh", "measure", "chromatin")
#: the jobs after refine, in the order Snakemake starts them on 2 cores (measure has
#: ``priority: 1``; each rule ``threads: 1``): two at a time, the next when one exits
AFTER_REFINE = ("measure", "chromatin", "mesh")
PEER_HALO = 24  # voxels of context around each annotated slice for scikit-image's features

# one stage in a fresh process: prints {"wall": s, "cpu": s, "peak": bytes, ...} as JSON
_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {src!r})
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
from sxtflow import stages
from sxtflow.progress import log_to
log_to({log!r})
args = json.loads({args!r})
base = hwm()
t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
getattr(stages, {func!r})(*args["args"], **args["kwargs"])
r1 = resource.getrusage(resource.RUSAGE_SELF)
c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
# worker processes (refine forks for large groups): their CPU counts; their peak is
# reported apart (forked pages are shared with the parent, so RSS cannot be summed)
print(json.dumps({{"wall": time.perf_counter() - t0,
                  "cpu": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
                         + (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime),
                  "base": base, "peak": hwm(), "worker_peak": c1.ru_maxrss * 1024}}))
"""


def _start_child(func, log, *args, **kwargs):
    """Start one stage in a fresh Python process; returns (process, start time)."""
    code = _CHILD.format(
        src=str(ROOT / "src"),
        log=str(log),
        func=func,
        args=json.dumps({"args": [str(a) for a in args], "kwargs": kwargs}),
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, t0


def _finish_child(proc, t0, func, log) -> dict:
    """Wait for a stage's process; its measurements, with ``process_wall`` (start to exit,
    interpreter start and imports included, as a Snakemake job pays them)."""
    out, err = proc.communicate()
    process_wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(err)
        raise SystemExit(f"{func} failed (log: {log})")
    r = json.loads(out.strip().splitlines()[-1])
    r["process_wall"] = process_wall
    return r


def _run_child(func, log, *args, **kwargs):
    return _finish_child(*_start_child(func, log, *args, **kwargs), func, log)


def config():
    """The demo config with every default filled in (``sxtflow.options``), lymphocyte classes."""
    import yaml

    from sxtflow.options import with_defaults

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    return with_defaults(cfg, CLASSES)


def classes():
    from sxtflow.labels import default_labels

    table = default_labels()
    return {c: int(table.value(c)) for c in CLASSES}


def feature_spec():
    from sxtflow.segment import FAST_SPEC, FeatureSpec

    return FeatureSpec(
        sigmas=FAST_SPEC.sigmas,
        families=FAST_SPEC.families,
        family_sigmas={"gaussian": (*FAST_SPEC.sigmas, 8.0)},
    )


def prepare(args, cache: Path) -> dict:
    """Simulated projections, truth, training reconstruction, annotation and model (cached)."""
    from sxtflow import io, sim, stages

    cache.mkdir(parents=True, exist_ok=True)
    files = {
        k: cache / f"{k}.{ext}"
        for k, ext in (
            ("projections", "h5"),
            ("truth", "tif"),
            ("lac", "tif"),
            ("tomogram", "tif"),
            ("annotation", "tif"),
            ("model", "skops"),
        )
    }
    t = time.perf_counter()
    if not files["projections"].exists():
        print(f"simulating a {args.size}³ lymphocyte at {args.voxel_nm:g} nm …", flush=True)
        stages.run_simulate(
            files["projections"],
            files["truth"],
            files["lac"],
            cell_type="lymphocyte",
            shape=(args.size,) * 3,
            voxel_nm=args.voxel_nm,
            seed=args.seed,
            n_angles=args.angles,
            photons=3000.0,
            blur_nm=40.0,
        )
    if not files["tomogram"].exists():
        stages.run_reconstruct(files["projections"], files["tomogram"])
    if not files["annotation"].exists():
        truth = io.read_volume(files["truth"])
        ann = sim.annotate(truth, CLASSES, slices_per_class=3, seed=args.seed, rim=True)
        io.write_volume(files["annotation"], ann)
    if not files["model"].exists():
        print("training …", flush=True)
        stages.run_train_tomograms(
            [files["tomogram"]],
            [files["annotation"]],
            files["model"],
            classes=classes(),
            spec=feature_spec(),
            threads=args.threads,
            estimator="extra_trees",
            n_estimators=args.trees,
            max_depth=None,
            class_weight="none",
            seed=0,
        )
    print(f"inputs ready in {time.perf_counter() - t:.0f} s (cache {cache})", flush=True)
    return files


def per_cell(args, files, work: Path) -> list[tuple[str, dict]]:
    """The five stages, each in a fresh process, with the demo config's options."""
    cfg = config()
    cls = classes()
    m = cfg["measure"]
    block = list(cfg["predict"]["block"])
    rules = {k: v for k, v in cfg["refine"].items() if k in cls}
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    w = {k: work / v for k, v in (
        ("tomogram", "tomogram.tif"), ("labels", "labels.tif"), ("unc", "uncertainty.tif"),
        ("probs", "probabilities.zarr"), ("refined", "refined.tif"),
    )}  # fmt: skip
    steps = [
        ("reconstruct", "run_reconstruct", (files["projections"], w["tomogram"]), {}),
        (
            "predict",
            "run_predict",
            (files["model"], w["labels"], w["unc"], w["probs"]),
            {"block": block, "threads": args.threads},
        ),
        (
            "refine",
            "run_refine",
            (w["labels"], w["refined"]),
            {
                "classes": cls,
                "rules": rules,
                "tomogram_path": str(w["tomogram"]),
                "threads": args.threads,
            },
        ),  # the boundary step reads the tomogram, as the rule does
        (
            "mesh",
            "run_mesh",
            (
                w["refined"],
                w["tomogram"],
                work / "scene.glb",
                work / "ply",
                work / "render.png",
                work / "slices.png",
            ),
            {"classes": cls, "smooth_iterations": cfg["mesh"]["smooth_iterations"]},
        ),  # fmt: skip
        (
            "measure",
            "run_measure",
            (w["refined"], w["tomogram"], work / "organelles.tsv", work / "cell.tsv"),
            {
                "out_surface": str(work / "surface.tsv"),
                "classes": cls,
                "min_volume_um3": m["min_volume_um3"],
                "smooth_iterations": cfg["mesh"]["smooth_iterations"],
                "contact_distance_um": m["contact_distance_um"],
                "separate": {k: v for k, v in m["separate"].items() if k in cls},
                "surface": cfg["surface"],
            },
        ),  # fmt: skip
        (
            "chromatin",
            "run_chromatin",
            (w["refined"], w["tomogram"], work / "chromatin.tsv", work / "profile.tsv"),
            {"classes": cls, "chromatin": cfg["chromatin"]},
        ),  # fmt: skip
    ]
    out = []
    # mesh, measure and chromatin need only refine's labels and the tomogram, and their
    # rules have ``threads: 1``: on ``--cores 2`` Snakemake runs two at a time (measure
    # first), and so does this benchmark unless --serial
    together = set(AFTER_REFINE) <= set(args.stages) and not args.serial
    for name, func, paths, kwargs in steps:
        if name == "predict":
            paths = (w["tomogram"], *paths)
        if name not in args.stages:
            print(f"  {name}: not run (its outputs are read from {work})", flush=True)
            continue
        if together and name in AFTER_REFINE:
            continue  # below, two at a time
        print(f"  {name} …", flush=True)
        log = logs / f"{name}.log"
        r = _run_child(func, log, *paths, **kwargs)
        _print_stage(name, r)
        out.append((name, r))
    if together:
        out += _two_at_a_time([s for n in AFTER_REFINE for s in steps if s[0] == n], logs)
    return out


def _two_at_a_time(steps, logs: Path) -> list[tuple[str, dict]]:
    """Run ``steps`` as Snakemake does with ``--cores 2`` and ``threads: 1`` each: two at a
    time in this order, the next one as soon as one exits; their results and the group's
    wall from the first start to the last exit (key ``"mesh ∥ measure"``)."""
    print(f"  {', '.join(n for n, *_ in steps)}: two at a time …", flush=True)
    queue = list(steps)
    running = []
    out = []
    t0 = time.perf_counter()
    while queue or running:
        while queue and len(running) < 2:
            name, func, paths, kwargs = queue.pop(0)
            log = logs / f"{name}.log"
            running.append((name, func, log, _start_child(func, log, *paths, **kwargs)))
        time.sleep(0.05)
        for item in list(running):
            name, func, log, (proc, start) = item
            if proc.poll() is None:
                continue
            running.remove(item)
            r = _finish_child(proc, start, func, log)
            _print_stage(name, r)
            out.append((name, r))
    group = time.perf_counter() - t0
    print(f"  mesh ∥ measure ∥ chromatin: {group:.1f} s wall from the first start to the last exit")
    out.append(("mesh ∥ measure", {"pair_wall": group}))
    return out


def _print_stage(name, r):
    print(
        f"  {name}: {r['wall']:.1f} s wall in the stage function, {r['process_wall']:.1f} s "
        f"for the process, {r['cpu']:.1f} CPU-s, peak {r['peak'] / 2**20:.0f} MiB",
        flush=True,
    )


def skimage_vs_sxtflow(args, files, work: Path) -> dict:
    """Predict throughput on the same central slab: scikit-image's recipe vs sxtflow."""
    from skimage.feature import multiscale_basic_features
    from skimage.future import predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    from sxtflow import core, io, segment

    vol = io.read_volume(work / "tomogram.tif")
    data = np.asarray(vol.data, dtype=np.float32)
    ann = io.read_volume(files["annotation"]).data
    model, card = segment.load_model(files["model"])

    def feats(v):
        return multiscale_basic_features(
            v, intensity=True, edges=True, texture=True, sigma_min=0.5, sigma_max=16,
            channel_axis=None,
        ).astype(np.float32, copy=False)  # fmt: skip

    # scikit-image trains on the annotated slices as fit_segmenter does (clf.fit on the
    # annotated voxels' features), with the same number of trees. The features of whole
    # slabs would not fit (a 96-slice 512² slab took the process to 20.6 GB: float64
    # temporaries of 30 channels), so each annotated slice's features come from its own
    # box: the annotated voxels' bounding box grown by PEER_HALO voxels along every axis
    # (clipped to the volume); the same annotated voxels, the same labels
    zs = np.flatnonzero(ann.reshape(ann.shape[0], -1).any(axis=1))
    X, y = [], []
    for z in zs:
        yy, xx = np.nonzero(ann[z])
        box = tuple(
            slice(max(0, int(lo) - PEER_HALO), min(n, int(hi) + PEER_HALO + 1))
            for lo, hi, n in (
                (z, z, ann.shape[0]),
                (yy.min(), yy.max(), ann.shape[1]),
                (xx.min(), xx.max(), ann.shape[2]),
            )
        )
        f = feats(data[box])
        a = np.zeros(f.shape[:-1], dtype=ann.dtype)
        a[z - box[0].start] = ann[z, box[1], box[2]]
        X.append(f[a > 0])
        y.append(a[a > 0])
        del f
    clf = RandomForestClassifier(n_estimators=args.trees, n_jobs=args.threads, random_state=0)
    t = time.perf_counter()
    clf.fit(np.concatenate(X), np.concatenate(y))
    print(f"  scikit-image forest trained in {time.perf_counter() - t:.0f} s", flush=True)

    nz = data.shape[0]
    z0 = max(0, nz // 2 - args.slab // 2)
    region = (slice(z0, min(nz, z0 + args.slab)), slice(None), slice(None))
    slab = data[region]
    cyl = core.cylinder_mask(data.shape)

    def timed(fn, *a, **k):
        t, c = time.perf_counter(), time.process_time()
        res = fn(*a, **k)
        return res, time.perf_counter() - t, time.process_time() - c

    def sk(v):
        f = feats(v)
        return predict_segmenter(f, clf)

    lsk, sk_w, sk_c = timed(sk, slab)
    mask = np.broadcast_to(cyl[None], data.shape)
    (lsx, _), sx_w, sx_c = timed(
        segment.predict_volume, data, model, card, block=(64, 128, 128), n_jobs=args.threads,
        mask=mask, region=region,
    )  # fmt: skip
    return {"voxels": slab.size, "sk_wall": sk_w, "sk_cpu": sk_c, "sx_wall": sx_w, "sx_cpu": sx_c}


def check_full(args, files, work: Path) -> dict:
    """The full-resolution prediction (every voxel, every feature) and Dice of the fast one."""
    from sxtflow import core, io, segment
    from sxtflow.segment import dice_iou

    vol = io.read_volume(work / "tomogram.tif")
    model, card = segment.load_model(files["model"])
    mask = core.field_of_view(vol)
    kwargs = {}
    import inspect

    params = inspect.signature(segment.predict_volume).parameters
    if "coarse" in params:
        kwargs["coarse"] = None
    if "feature_subset" in params:
        kwargs["feature_subset"] = False
    if "wide_stride" in params:
        kwargs["wide_stride"] = None
    if "exact_probabilities" in params:
        kwargs["exact_probabilities"] = True
    t, c = time.perf_counter(), time.process_time()
    full, _ = segment.predict_volume(
        vol.data, model, card, block=(64, 128, 128), n_jobs=args.threads, mask=mask, **kwargs
    )
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    fast = io.read_volume(work / "labels.tif").data
    cls = classes()
    df = dice_iou(fast, full, cls)
    dice = dict(zip(df["class"], df["dice"], strict=True))
    changed = int(np.count_nonzero(fast != full))
    return {"wall": wall, "cpu": cpu, "dice": dice, "changed": changed, "voxels": full.size}


# measurement only: every Python process of the demo appends its CPU seconds at exit
_RECORDER = """
import atexit, json, os, sys


def _record():
    t = os.times()
    with open(os.environ["SXTFLOW_CPU_RECORD"], "a") as f:
        f.write(json.dumps({"argv": sys.argv[:1], "cpu": t.user + t.system,
                            "children": t.children_user + t.children_system}) + "\\n")


atexit.register(_record)
"""


def _rule_settings(workflow: Path, dry_run: str) -> tuple[dict, dict]:
    """Each rule's threads (from ``snakemake -n``'s job list: the config decides them) and
    the rule of each script (from ``workflow/rules``)."""
    import re

    threads, script_rule, rule = {}, {}, None
    for line in dry_run.splitlines():
        if m := re.match(r"(?:local)?rule (\w+):", line):
            rule = m.group(1)
            threads.setdefault(rule, 1)
        elif rule and (m := re.match(r"\s+threads: (\d+)", line)):
            threads[rule] = max(threads[rule], int(m.group(1)))
    for smk in sorted((workflow / "rules").glob("*.smk")):
        for line in smk.read_text().splitlines():
            if m := re.match(r"rule (\w+):", line):
                rule = m.group(1)
            elif m := re.search(r"scripts/(\w+)\.py", line):
                script_rule[m.group(1)] = rule
    return threads, script_rule


def schedule_estimate(jobs: dict, cpu: dict, threads: dict, cores: int, speedup: float) -> float:
    """Idle wall of a DAG on ``cores`` cores by a list schedule, longest remaining path first.

    ``jobs``: job id → (rule, ids it depends on); each job lasts its rule's mean CPU seconds
    (``cpu``), divided by ``speedup`` on ``threads[rule]`` > 1 cores (capped at ``cores``).
    """
    import heapq

    def need(j):
        return min(cores, threads.get(jobs[j][0], 1))

    def dur(j):
        c = cpu.get(jobs[j][0], 0.0)
        return c / speedup if need(j) > 1 else c

    succ: dict = {j: [] for j in jobs}
    for j, (_, deps) in jobs.items():
        for d in deps:
            succ[d].append(j)
    rest: dict = {}
    for j in sorted(jobs, key=lambda j: -len(succ[j])):  # memoised longest remaining path
        stack = [j]
        while stack:
            k = stack[-1]
            todo = [s for s in succ[k] if s not in rest]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            rest[k] = dur(k) + max((rest[s] for s in succ[k]), default=0.0)
    t, free, running, done, pending = 0.0, cores, [], set(), set(jobs)
    while pending or running:
        ready = [j for j in pending if all(d in done for d in jobs[j][1])]
        for j in sorted(ready, key=lambda j: -rest[j]):
            if need(j) <= free:
                free -= need(j)
                pending.discard(j)
                heapq.heappush(running, (t + dur(j), j))
        t, j = heapq.heappop(running)
        free += need(j)
        done.add(j)
    return t


def demo(args) -> dict:
    """The 12-cell demo on a copy of the workflow: wall and CPU time (children included),
    CPU seconds per rule and of Snakemake itself, and the idle wall that a list schedule of
    these CPU seconds gives on ``--threads`` cores (a 2-thread job at a speed-up of 2 / 1.5)."""
    import re
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        for name in ("Snakefile", "workflow", "config", "src", "envs", "profiles"):
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, Path(tmp) / name)
            elif src.exists():
                shutil.copy(src, Path(tmp) / name)
        snake = Path(sys.executable).parent / "snakemake"
        dag = subprocess.run(
            [str(snake), "--d3dag", "--quiet"], cwd=tmp, capture_output=True, text=True
        )
        graph = json.loads(dag.stdout[dag.stdout.index("{") :])
        dry = subprocess.run([str(snake), "-n"], cwd=tmp, capture_output=True, text=True)
        rule_of = {n["id"]: n["value"]["rule"] for n in graph["nodes"]}
        jobs = {j: (r, []) for j, r in rule_of.items()}
        for link in graph["edges"]:
            jobs[link["v"]][1].append(link["u"])
        acct = Path(tmp) / "_cpu_record"
        acct.mkdir()
        (acct / "sitecustomize.py").write_text(_RECORDER)
        env = dict(os.environ, SXTFLOW_CPU_RECORD=str(acct / "cpu.jsonl"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(acct), env.get("PYTHONPATH")]))
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        res = subprocess.run(
            [str(snake), "--cores", str(args.threads), "--quiet"],
            cwd=tmp,
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            sys.stderr.write(res.stderr[-4000:])
            raise SystemExit("demo failed")
        tests = Path(tmp) / "results" / "compare" / "tests.tsv"
        found = None
        if tests.exists():
            import pandas as pd

            t_ = pd.read_csv(tests, sep="\t")
            sig = t_[(t_["family"] == "primary") & t_["significant"].astype(bool)]
            found = sorted(sig["measure"].astype(str)) if "measure" in sig else None
        threads, script_rule = _rule_settings(Path(tmp) / "workflow", dry.stdout + dry.stderr)
        records = [json.loads(line) for line in (acct / "cpu.jsonl").read_text().splitlines()]
    per_rule: dict = {}
    main = children = 0.0
    for rec in records:
        if m := re.search(r"tmp\w+\.(\w+)\.py$", rec["argv"][0] if rec["argv"] else ""):
            n, c = per_rule.get(script_rule.get(m.group(1), m.group(1)), (0, 0.0))
            per_rule[script_rule.get(m.group(1), m.group(1))] = (n + 1, c + rec["cpu"])
        elif rec["argv"] and Path(rec["argv"][0]).name == "snakemake":
            main, children = rec["cpu"], rec["children"]
    scripts = sum(c for _, c in per_rule.values())
    other = main + max(0.0, children - scripts)  # Snakemake itself, its shells, teardowns
    mean = {r: c / n for r, (n, c) in per_rule.items()}
    est = {
        s: schedule_estimate(jobs, mean, threads, args.threads, s) + other / args.threads
        for s in (2.0, 1.5)
    }
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {
        "wall": wall,
        "cpu": cpu,
        "significant": found,
        "per_rule": per_rule,
        "snakemake": main,
        "other": other - main,
        "estimate": est,
    }


def report_demo(args, dm: dict) -> None:
    """Print the demo's CPU seconds per rule and its wall, CPU and estimated idle wall."""
    print(f"demo (12 cells), CPU seconds per rule ({args.threads} cores):")
    print(f"{'rule':<18} {'jobs':>4} {'CPU s':>8}")
    for rule, (n, c) in sorted(dm["per_rule"].items(), key=lambda x: -x[1][1]):
        print(f"{rule:<18} {n:4d} {c:8.1f}")
    print(f"{'Snakemake':<18} {'':>4} {dm['snakemake']:8.1f}")
    print(f"{'other children':<18} {'':>4} {dm['other']:8.1f}  (shells, interpreter exits)")
    e2, e15 = dm["estimate"][2.0], dm["estimate"][1.5]
    print(
        f"demo (12 cells): {dm['wall']:.0f} s wall, {dm['cpu']:.0f} CPU-s; estimated idle "
        f"wall {e2:.0f}-{e15:.0f} s (list schedule of these CPU seconds, 2-thread jobs at "
        f"a speed-up of 2 / 1.5; goal ≤ 180 s wall on 2 idle cores: "
        f"{e15 / 180:.2f}× the goal); significant primary measures: {dm['significant']}"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="edge of the cubic volume, voxels")
    p.add_argument("--voxel-nm", type=float, default=25.0)
    p.add_argument("--angles", type=int, default=180)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--trees", type=int, default=50)
    p.add_argument("--seed", type=int, default=1400)
    p.add_argument("--slab", type=int, default=32, help="z-slices of the scikit-image slab")
    p.add_argument("--cache", default=None, help="directory for the prepared inputs")
    p.add_argument("--no-skimage", dest="skimage", action="store_false")
    p.add_argument("--check-full", action="store_true", help="also the full-resolution predict")
    p.add_argument("--demo", action="store_true", help="also the 12-cell demo")
    p.add_argument("--demo-only", action="store_true", help="the 12-cell demo only")
    p.add_argument(
        "--serial",
        action="store_true",
        help="run mesh, measure and chromatin one after the other (default: two at a time, "
        "as the workflow does on 2 cores)",
    )
    p.add_argument("--keep", default=None, help="keep the stage outputs in this directory")
    p.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated per-cell stages to run; the others' outputs must be in --keep "
        "(e.g. --stages predict with a kept tomogram: predict and the peer only)",
    )
    args = p.parse_args(argv)
    if args.demo_only:
        print(f"12-cell demo; load avg at start {os.getloadavg()}", flush=True)
        report_demo(args, demo(args))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        return
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        p.error(f"unknown stages {unknown}; choose from {', '.join(STAGES)}")
    if set(args.stages) != set(STAGES) and not args.keep:
        p.error("--stages other than all of them needs --keep (the skipped stages' outputs)")

    sys.path.insert(0, str(ROOT / "src"))
    cache = Path(args.cache or Path.home() / ".cache" / "sxtflow-bench" / "throughput")
    cache = cache / f"lymphocyte_{args.size}_{args.voxel_nm:g}nm_{args.angles}a_s{args.seed}"
    print(
        f"sxtflow throughput: {args.size}³ lymphocyte at {args.voxel_nm:g} nm, {args.angles} "
        f"projections, {args.threads} threads; load avg at start {os.getloadavg()}",
        flush=True,
    )
    files = prepare(args, cache)
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print("per-cell path (each stage a fresh process):", flush=True)
        stages_ = per_cell(args, files, work)
        loads.append(os.getloadavg()[0])
        peer = full = None
        if args.skimage:
            print(f"predict on a central slab of {args.slab} z-slices:", flush=True)
            peer = skimage_vs_sxtflow(args, files, work)
            loads.append(os.getloadavg()[0])
        if args.check_full:
            print("full-resolution prediction (every voxel, every feature) …", flush=True)
            full = check_full(args, files, work)
            loads.append(os.getloadavg()[0])
    dm = None
    if args.demo:
        print("12-cell demo …", flush=True)
        dm = demo(args)
        loads.append(os.getloadavg()[0])

    f32 = args.size**3 * 4
    print()
    print(
        f"Per-cell path, {args.size}³ voxels of {args.voxel_nm:g} nm "
        f"({f32 / 2**20:.0f} MiB float32), {args.threads} threads"
    )
    print(
        f"{'stage':<12} {'wall s':>8} {'process s':>10} {'CPU s':>8} {'peak MiB':>9} "
        f"{'× tomogram':>11}"
    )
    tw = tp = tc = 0.0
    rows = dict(stages_)
    for name, r in stages_:
        if "pair_wall" in r:
            continue
        tw += r["wall"]
        tp += r["process_wall"]
        tc += r["cpu"]
        workers = r.get("worker_peak", 0)
        print(
            f"{name:<12} {r['wall']:8.1f} {r['process_wall']:10.1f} {r['cpu']:8.1f} "
            f"{r['peak'] / 2**20:9.0f} {r['peak'] / f32:11.2f}"
            + (f"  (a worker process: peak {workers / 2**20:.0f} MiB)" if workers else "")
        )
    print(
        "wall s: inside the stage function (its imports included); process s: the whole "
        "process, interpreter start included; CPU s: the stage's process and its workers"
    )
    print(f"{'sum':<12} {tw:8.1f} {tp:10.1f} {tc:8.1f}")
    if len(rows) >= len(STAGES):
        path = tp
        how = "the six processes one after another"
        if "mesh ∥ measure" in rows:
            pair = rows["mesh ∥ measure"]["pair_wall"]
            path = tp - sum(rows[n]["process_wall"] for n in AFTER_REFINE) + pair
            how = (
                "reconstruct → predict → refine → (mesh, measure, chromatin two at a time) as "
                f"Snakemake runs them on 2 cores (those three: {pair:.1f} s)"
            )
        print(
            f"per-cell path, {how}: {path:.1f} s wall = {path / GOAL_S:.2f}× the goal of "
            f"{GOAL_S:.0f} s; {BEFORE_S / path:.1f}× faster than the {BEFORE_S:.0f} s of "
            "issue 14 (goal ≥ 7×)"
        )
    if peer:
        v = peer["voxels"]
        rw = (v / peer["sx_wall"]) / (v / peer["sk_wall"])
        rc = (v / peer["sx_cpu"]) / (v / peer["sk_cpu"])
        print(
            f"predict, same slab ({v / 1e6:.1f} Mvoxel): sxtflow {v / peer['sx_wall'] / 1e6:.3f} "
            f"Mvoxel/s wall, {v / peer['sx_cpu'] / 1e6:.3f} Mvoxel/CPU-s; scikit-image "
            f"{v / peer['sk_wall'] / 1e6:.3f} / {v / peer['sk_cpu'] / 1e6:.3f}: "
            f"{rw:.1f}× wall, {rc:.1f}× CPU (goal ≥ 10×; on the slab both classify every "
            "voxel: sxtflow's coarse-to-fine needs the whole volume)"
        )
    if peer and "predict" in dict(stages_):
        v = peer["voxels"]
        pr = dict(stages_)["predict"]
        whole = args.size**3
        print(
            f"predict, whole tomogram ({whole / 1e6:.0f} Mvoxel, the predict stage above, "
            f"coarse-to-fine): sxtflow {whole / pr['cpu'] / 1e6:.3f} Mvoxel/CPU-s; "
            f"scikit-image at its slab rate would take {whole / (v / peer['sk_cpu']):.0f} "
            f"CPU-s: {(whole / pr['cpu']) / (v / peer['sk_cpu']):.1f}× per CPU-second, "
            f"{(whole / pr['wall']) / (v / peer['sk_wall']):.1f}× wall"
        )
    if full:
        d = ", ".join(f"{k} {v:.4f}" for k, v in full["dice"].items())
        print(
            f"fast vs full-resolution prediction: Dice {d} (goal ≥ 0.995 each); "
            f"{full['changed']} voxels differ ({100 * full['changed'] / full['voxels']:.3f} %); "
            f"full prediction {full['wall']:.0f} s wall, {full['cpu']:.0f} CPU-s (labels only)"
        )
    if dm:
        report_demo(args, dm)
    print(f"load average during the run: {', '.join(f'{x:.1f}' for x in loads)}")


if __name__ == "__main__":
    main()
