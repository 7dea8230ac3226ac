"""The robustness suite against the pipeline of the day issue 13 was filed.

Issue 13 asks that no variant of the robustness suite (``benchmarks/segmentation.py
--suite``) be worse than "today's default on the same variant": the pipeline as it was on
the day the issue was filed (commit ``6226e7e``), with its default settings. That code
cannot simulate the suite's variants (the annotator styles came later), so this benchmark
simulates every variant's cells and annotations with today's code, once, and runs both
pipelines on the same arrays in one run:

* **then**: the filed day's source (``git archive <commit>`` of this repository, unpacked
  into a temporary directory and imported in a subprocess through ``PYTHONPATH``): its
  ``stages.run_features`` / ``run_train`` / ``run_predict`` / ``run_refine`` with the
  defaults of its ``options.DEFAULTS`` (every feature family at 5 scales, a random forest
  of 100 trees, depth 18, ``sqrt_balanced``; refine without a tomogram), on files written
  by its own ``io``. Its model refuses to be written below a cross-validated skill of 0.2
  (``min_cv_skill``); that is reported, and the model is then trained without the check so
  that it has numbers.
* **now** (``--now``): ``suite``, the suite's own predictions (the segmentation benchmark's
  settings and cache: extra trees on ``FAST_SPEC``) refined with today's defaults (the
  boundary step), as ``--suite`` prints them; and ``default``, today's pipeline run exactly
  like the baseline (the same four stage functions with today's defaults: the same
  features and forest, outlines filled, coarse-to-fine prediction, the boundary step).

All are scored by ``segmentation.scores`` against the same truth; printed per variant and
class: Dice and mean |volume error| then and now, and whether now is worse (Dice lower by
more than 0.005 or mean |volume error| higher by more than 1 point, the other not better
by as much) or a trade-off (one worse, the other better), with the CPU seconds of
prediction (features included) and refine of each. The pipelines' results are kept in
``--cache`` by commit (today's only when ``src`` has no uncommitted changes).

Usage::

    nice -n 10 .venv/bin/python benchmarks/suite_baseline.py --cache /tmp/acc_suite \\
        --variants sirt60,rim --split held-out

Needs git and the repository's history (``--commit`` must be reachable).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: The commit on the day issue 13 was filed (2026-11-27).
FILED = "6226e7e"


def _driver(inp, out):
    """Run in a subprocess whose ``PYTHONPATH`` puts the old source first."""
    import sxtflow
    from sxtflow import io, stages
    from sxtflow.io import Volume

    src = os.environ["SXTFLOW_BASELINE_SRC"]
    if not os.path.abspath(sxtflow.__file__).startswith(os.path.abspath(src)):
        raise SystemExit(f"baseline: imported {sxtflow.__file__}, not the code in {src}")
    d = np.load(inp)
    meta = json.loads(str(d["meta"]))
    classes, vox = meta["classes"], float(meta["voxel_nm"])
    work = os.path.dirname(out)
    fov = {"field_of_view": "cylinder"}  # the suite's predictions are in the cylinder too
    t0 = time.process_time()
    feats, anns, toms = [], [], []
    for i in range(meta["n_train"]):
        tom = os.path.join(work, f"train{i}.tif")
        io.write_volume(tom, Volume(d[f"train{i}"], vox, fov))
        ann = os.path.join(work, f"ann{i}.tif")
        io.write_volume(ann, Volume(d[f"ann{i}"].astype(np.uint8), vox))
        feat = os.path.join(work, f"feat{i}.zarr")
        stages.run_features(tom, feat)
        feats.append(feat)
        anns.append(ann)
        toms.append(tom)
    model = os.path.join(work, "model.skops")
    refused = None
    try:
        stages.run_train(feats, anns, model, classes=classes, tomogram_paths=toms)
    except Exception as exc:  # noqa: BLE001 - the old code's refusal, reported
        refused = str(exc).splitlines()[0][:200]
        stages.run_train(feats, anns, model, classes=classes, tomogram_paths=toms, min_cv_skill=0)
    train_cpu = time.process_time() - t0
    result = {"refused": refused, "train_cpu": train_cpu, "predict_cpu": [], "refine_cpu": []}
    labels = {}
    for i in range(meta["n_test"]):
        tom = os.path.join(work, f"test{i}.tif")
        io.write_volume(tom, Volume(d[f"test{i}"], vox, fov))
        pred, ref = os.path.join(work, f"pred{i}.tif"), os.path.join(work, f"ref{i}.tif")
        t = time.process_time()
        stages.run_predict(tom, model, pred)
        result["predict_cpu"].append(time.process_time() - t)
        t = time.process_time()
        if "tomogram_path" in inspect.signature(stages.run_refine).parameters:
            stages.run_refine(pred, ref, classes=classes, tomogram_path=tom)  # today's
        else:
            stages.run_refine(pred, ref, classes=classes)
        result["refine_cpu"].append(time.process_time() - t)
        labels[f"labels{i}"] = np.asarray(io.read_volume(ref).data)
    np.savez_compressed(out, result=json.dumps(result), **labels)


def _extract(commit, dest):
    """The source tree of ``commit`` unpacked into ``dest``; its ``src`` directory."""
    archive = subprocess.run(
        ["git", "-C", ROOT, "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return os.path.join(dest, "src")


def run_pipeline(src, work, train, anns, tests, classes, voxel_nm):
    """(refined labels per test tomogram, info) of the pipeline in ``src``, in a subprocess."""
    inp, out = os.path.join(work, "in.npz"), os.path.join(work, "out.npz")
    arrays = {f"train{i}": np.asarray(v, np.float32) for i, v in enumerate(train)}
    arrays |= {f"ann{i}": a for i, a in enumerate(anns)}
    arrays |= {f"test{i}": np.asarray(v, np.float32) for i, v in enumerate(tests)}
    meta = {"classes": classes, "voxel_nm": voxel_nm, "n_train": len(train), "n_test": len(tests)}
    np.savez(inp, meta=json.dumps(meta), **arrays)
    env = {**os.environ, "PYTHONPATH": src, "SXTFLOW_BASELINE_SRC": src}
    env.pop("PYTHONSAFEPATH", None)
    cmd = [sys.executable, "-c", _DRIVER, inp, out]
    subprocess.run(cmd, check=True, env=env, cwd=work)
    d = np.load(out)
    return [d[f"labels{i}"] for i in range(len(tests))], json.loads(str(d["result"]))


# The subprocess must import the old ``sxtflow`` (PYTHONPATH first), so it loads this file
# by path instead of importing today's package.
_DRIVER = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('suite_baseline', {__file__!r})\n"
    "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
    "mod._driver(sys.argv[1], sys.argv[2])\n"
)

WORSE_DICE = 0.005  # a Dice lower by more than this is worse …
WORSE_VOLUME = 0.01  # … and so is a mean |volume error| higher by more than this (1 point)


def _verdict(d_then, v_then, d_now, v_now):
    """'worse' when now loses on Dice or volume error and gains on neither; 'trade-off' when
    it loses on one and gains on the other (by the same margins); else 'ok'."""
    lose = (d_now < d_then - WORSE_DICE, v_now > v_then + WORSE_VOLUME)
    gain = (d_now > d_then + WORSE_DICE, v_now < v_then - WORSE_VOLUME)
    if any(lose):
        return "trade-off" if any(gain) else "worse"
    return "ok"


def _rev(ref):
    """The full commit of ``ref``, or None when ``ref`` is HEAD and the tree has changes."""
    rev = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    if ref == "HEAD":
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "src"], capture_output=True, text=True
        ).stdout.strip()
        return None if dirty else rev
    return rev


def cached_run(cache, key, src, work, *data):
    """:func:`run_pipeline`, its result kept in ``cache`` under ``key`` (None: not kept)."""
    path = None
    if cache and key:
        import hashlib

        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        path = os.path.join(cache, f"baseline_{digest}.npz")
        if os.path.exists(path):
            d = np.load(path)
            info = json.loads(str(d["result"]))
            return [d[f"labels{i}"] for i in range(info["n"])], info
    labels, info = run_pipeline(src, work, *data)
    info["n"] = len(labels)
    if path:
        tmp = path + ".tmp.npz"
        np.savez_compressed(
            tmp, result=json.dumps(info), **{f"labels{i}": a for i, a in enumerate(labels)}
        )
        os.replace(tmp, path)
    return labels, info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default=FILED, help="the baseline commit (default %(default)s)")
    ap.add_argument("--variants", help="comma list of suite variants (default: every one)")
    ap.add_argument("--split", default="held-out", choices=["held-out", "tuning", "both"])
    ap.add_argument("--cache", help="the segmentation benchmark's suite cache directory")
    ap.add_argument("--threads", type=int, default=2, help="the suite's prediction threads")
    ap.add_argument(
        "--now",
        default="suite,default",
        help="what 'now' is, comma list: 'suite' (the segmentation benchmark's settings and "
        "cached predictions, as --suite prints them), 'default' (today's pipeline with its "
        "defaults, run like the baseline)",
    )
    args = ap.parse_args(argv)

    sys.path.insert(0, HERE)
    import segmentation as S

    names = args.variants.split(",") if args.variants else list(S.VARIANTS)
    nows = args.now.split(",")
    classes = S.suite_classes()
    sargs = argparse.Namespace(
        threads=args.threads, block=(64, 128, 128), cache=args.cache, fill_outlines=True,
        train_seed=0,
    )  # fmt: skip
    cols = S.SUITE_COLS
    table = []
    then_rev, now_rev = _rev(args.commit), _rev("HEAD")
    with tempfile.TemporaryDirectory(prefix="suite_baseline_") as tmp:
        srcs = {"then": _extract(args.commit, tmp), "default": os.path.join(ROOT, "src")}
        revs = {"then": then_rev, "default": now_rev}
        for name in names:
            variant = S.VARIANTS[name]
            vox = float({**S.CENTRAL, **variant}["voxel_nm"])
            n = 3 if name == "central" else 2
            seeds = {"tuning": S.SUITE_TUNE[:n], "held-out": S.SUITE_HELD_OUT[:n]}
            seeds = seeds if args.split == "both" else {args.split: seeds[args.split]}
            train = [S.suite_tomogram(variant, s, args.cache) for s in S.SUITE_TRAIN]
            anns = [
                S.suite_annotation(variant, fine, s)
                for (_, _, fine), s in zip(train, S.SUITE_TRAIN, strict=True)
            ]
            suite = S._Predictions(name, variant, sargs)
            for split, ss in seeds.items():
                tests = [S.suite_tomogram(variant, s, args.cache) for s in ss]
                t0 = time.perf_counter()
                per, cpu, notes = {}, {}, []
                for kind in ["then", *[k for k in nows if k != "suite"]]:
                    work = tempfile.mkdtemp(dir=tmp, prefix=f"{name}_{split}_{kind}_")
                    key = revs[kind] and [revs[kind], name, variant, list(ss), S.SUITE_TRAIN]
                    labs, info = cached_run(
                        args.cache, key, srcs[kind], work, [t[0] for t in train], anns,
                        [t[0] for t in tests], classes, vox,
                    )  # fmt: skip
                    shutil.rmtree(work)  # feature stores: hundreds of MB per tomogram
                    per[kind] = [
                        S.scores(lab, truth, classes, vox / 1000)
                        for lab, (_, truth, _) in zip(labs, tests, strict=True)
                    ]
                    cpu[kind] = (sum(info["predict_cpu"]), sum(info["refine_cpu"]))
                    if info["refused"]:
                        notes.append(f"{kind}'s model refused: {info['refused']}")
                if "suite" in nows:
                    per["suite"], p, r = [], 0.0, 0.0
                    for (vol, truth, _), s in zip(tests, ss, strict=True):
                        lab, c = suite(s, vol)
                        ref, rc = S.suite_refine(lab, vol, classes, vox, "boundary")
                        p, r = p + c, r + rc
                        per["suite"].append(S.scores(ref, truth, classes, vox / 1000))
                    cpu["suite"] = (p, r)
                print(
                    f"[{name}/{split}] seeds {list(ss)}; predict + refine CPU-s: "
                    + ", ".join(f"{k} {p:.0f} + {r:.0f}" for k, (p, r) in cpu.items())
                    + ("; " + "; ".join(notes) if notes else "")
                    + f" | {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
                for c in cols:
                    d = {k: S._mean([x for x, _ in v], c, float) for k, v in per.items()}
                    v = {k: S._mean([x for _, x in v], c, abs) for k, v in per.items()}
                    verdict = {k: _verdict(d["then"], v["then"], d[k], v[k]) for k in nows}
                    table.append((name, split, c, d, v, verdict))
                    print(
                        f"  {c:14s} "
                        + "   ".join(f"{k} {d[k]:.3f} / {100 * v[k]:5.1f} %" for k in per)
                        + "   "
                        + " ".join(f"{k}: {verdict[k]}" for k in nows),
                        flush=True,
                    )
    print(
        "\n| variant | split | class | then Dice / |ΔV| % | "
        + " | ".join(f"{k} Dice / |ΔV| %" for k in nows)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(nows))
    for name, split, c, d, v, verdict in table:
        print(
            f"| {name} | {split} | {c} | {d['then']:.3f} / {100 * v['then']:.1f} | "
            + " | ".join(
                f"{d[k]:.3f} / {100 * v[k]:.1f}"
                + ("" if verdict[k] == "ok" else f" **{verdict[k]}**")
                for k in nows
            )
            + " |"
        )
    for k in nows:
        count = {w: sum(t[5][k] == w for t in table) for w in ("worse", "trade-off")}
        print(
            f"{k} against {args.commit}, of {len(table)} (variant, split, class) entries: "
            f"{count['worse']} worse, {count['trade-off']} trade-offs (one of Dice and volume "
            f"error better, the other worse)"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")
    return table


if __name__ == "__main__":
    main()
