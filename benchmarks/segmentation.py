"""Segmentation from a few annotations: sxtflow vs scikit-image's trainable segmentation.

One run, one table. Simulated yeast and lymphocyte cells (texture, zone-plate blur, Poisson
noise, FBP reconstruction artefacts; a limited-angle ±65° yeast set too) are simulated,
projected and reconstructed. The virtual annotator paints ≤ 3 slices per class on 2
training tomograms per set, tracing boundaries on both sides (``annotate(rim=True)``; the
cell's outline in the ice slices); both methods are trained on exactly these annotations
and applied to unseen tomograms of the same set. Cells are simulated at their physical
size (cell scale ``s`` ≈ 1, printed per tomogram): the lymphocyte grid is 176×184×184
voxels of 64 nm, as 112×128×128 shrank the 7–8 µm cell to ~5 µm and its mitochondria to
1.3–1.6 voxels radius.

* sxtflow: :data:`sxtflow.features.FAST_SPEC` features (lymphocytes: plus a Gaussian at
  σ = 8 voxels, see :func:`feature_spec`) →
  :func:`sxtflow.classify.train` (extremely randomised trees, 50 of unlimited depth,
  unweighted classes; ``--estimator random_forest --depth 14 --class-weight
  sqrt_balanced`` for the random forest used before) →
  :func:`sxtflow.classify.predict_volume` (fused block-wise features + classification,
  field-of-view cylinder only) → :func:`sxtflow.refine.refine_labels` (default rules; for
  yeast also a smooth nucleus, see :func:`refine_rules`).
* scikit-image: ``skimage.feature.multiscale_basic_features`` (intensity, edges, texture,
  σ 0.5–16 voxels: 30 features) + ``RandomForestClassifier(100 trees)``, predicted with
  ``skimage.future.predict_segmenter`` (the documented recipe), voxels outside the field of
  view set to 0 afterwards as for sxtflow.

Printed: Dice per class (mean over the unseen tomograms of each set), prediction throughput
(voxels/s over all voxels of the tomogram, wall clock and CPU time) of both and the ratio,
and the peak memory (RSS of a fresh process) of predicting a large tomogram with sxtflow
compared with its float32 size.

Usage::

    python benchmarks/segmentation.py            # full run: 3 sets + 512³ memory test
    python benchmarks/segmentation.py --quick    # yeast + lymphocyte, 1 test each, 256³
    python benchmarks/segmentation.py --sets lymphocyte --large 0 --cache /tmp/sxt
    # the settings before 2026-11-26 (one-sided outlines, balanced weights, default rules,
    # a random forest of depth ≤ 14, the same features for both cell types)
    python benchmarks/segmentation.py --no-rim --class-weight balanced --default-rules \
        --estimator random_forest --depth 14 --same-spec

Seeds are fixed per set (yeast 100…, yeast65 200…, lymphocyte 300…: 2 training
tomograms, then the unseen ones), so ``--sets`` runs compare with full runs.

Measured duration: the full run took 39 min on 2 cores shared with other jobs (load 7–14)
with a since-fixed feature memory leak and the smaller lymphocyte grid; its largest parts
are simulation (≈ 1 min per yeast tomogram under that load, 1.5 min per lymphocyte at
176×184×184) and scikit-image's features. ``--cache DIR`` keeps simulated tomograms.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

CLASSES = ["ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"]
TARGETS = {
    "cell": 0.95,
    "nucleus": 0.90,
    "vacuole": 0.85,
    "lipid_droplet": 0.85,
    "mitochondrion": 0.75,
}


def tomogram(cell_type, shape, voxel_nm, seed, tilt_range_deg=None, cache=None):
    """Simulate → project → reconstruct: (LAC µm⁻¹ float32, truth classes uint8, fine labels).

    With ``cache`` (a directory) the three are stored as ``.npz`` and reused by later runs.
    """
    import json

    from sxtflow import reconstruct, simulate
    from sxtflow.io import Volume
    from sxtflow.labels import default_labels

    if cache:
        name = f"{cell_type}_{'x'.join(map(str, shape))}_{voxel_nm:g}_{seed}_{tilt_range_deg}.npz"
        path = os.path.join(cache, name)
        if os.path.exists(path):
            d = np.load(path)
            fine = Volume(d["fine"], voxel_nm, json.loads(str(d["meta"])))
            return d["vol"], d["truth"], fine
        out = tomogram(cell_type, shape, voxel_nm, seed, tilt_range_deg)
        os.makedirs(cache, exist_ok=True)
        np.savez(path, vol=out[0], truth=out[1], fine=out[2].data, meta=json.dumps(out[2].meta))
        return out

    lac, fine = simulate.simulate_cell(cell_type, shape, voxel_nm, seed=seed)
    theta = simulate.tilt_angles(120, tilt_range_deg)
    proj = simulate.project(lac, theta, photons=3000.0, blur_nm=40.0, seed=seed + 1)
    algorithm = "fbp" if tilt_range_deg is None else "sirt"
    vol = reconstruct.reconstruct(proj, backend="builtin", algorithm=algorithm, iterations=100)
    truth = default_labels().to_classes(fine.data, CLASSES)
    return np.asarray(vol.data, dtype=np.float32), truth, fine


def skimage_features(vol):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(
        vol,
        intensity=True,
        edges=True,
        texture=True,
        sigma_min=0.5,
        sigma_max=16,
        channel_axis=None,
    )


def timed(fn, *args, **kw):
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t, time.process_time() - c


def refine_rules(cell_type):
    """Refinement rules per cell type: the defaults, plus for yeast a smooth nucleus.

    A yeast nucleus is a round body: protrusions and bites narrower than 0.3 µm are read
    from the cytoplasm's texture, so the nucleus is opened and closed with a ball of
    0.15 µm radius. Not for lymphocytes, whose nuclei may be indented and whose thin
    cytoplasm holds mitochondria next to the envelope (it costs them Dice there).
    """
    from sxtflow.refine import DEFAULT_RULES

    rules = {k: dict(v) for k, v in DEFAULT_RULES.items()}
    if cell_type == "yeast":
        rules["nucleus"] = {"smooth_radius_um": 0.15, **rules["nucleus"]}
    return rules


def feature_spec(cell_type, args):
    """Features per cell type: ``FAST_SPEC``, plus for lymphocytes a Gaussian at σ = 8 voxels.

    A lymphocyte's nucleus fills most of the cell and its euchromatin is close to the
    cytoplasm in LAC, so the forest read whole regions deep inside it as cytoplasm; a wide
    smoothing (0.5 µm at 64 nm) gives it the context. Only the Gaussian family gets the
    scale (``FeatureSpec.family_sigmas``), not all four (which doubled the prediction time
    and cost mitochondria). Not for yeast (measured: nucleus −0.006). ``--same-spec`` uses
    ``FAST_SPEC`` for both.
    """
    from sxtflow.features import FAST_SPEC, FeatureSpec

    if cell_type != "lymphocyte" or args.same_spec:
        return FAST_SPEC
    return FeatureSpec(
        sigmas=FAST_SPEC.sigmas,
        families=FAST_SPEC.families,
        family_sigmas={"gaussian": (*FAST_SPEC.sigmas, 8.0)},
    )


def run_set(name, cell_type, shape, voxel_nm, seeds_train, seeds_test, tilt, args, rows, speed):
    from skimage.future import predict_segmenter
    from sklearn.ensemble import RandomForestClassifier

    from sxtflow import classify, features, refine, simulate
    from sxtflow.evaluate import dice_iou
    from sxtflow.labels import default_labels
    from sxtflow.stages import cylinder_mask

    table = default_labels()
    present = [c for c in CLASSES if not (cell_type == "lymphocyte" and c == "vacuole")]
    classes = {c: table.value(c) for c in present}
    spec = feature_spec(cell_type, args)
    t0 = time.perf_counter()
    train_data = [tomogram(cell_type, shape, voxel_nm, s, tilt, args.cache) for s in seeds_train]
    test_data = [tomogram(cell_type, shape, voxel_nm, s, tilt, args.cache) for s in seeds_test]
    anns = [
        simulate.annotate(fine, present, slices_per_class=3, seed=s, rim=args.rim).data
        for (_, _, fine), s in zip(train_data, seeds_train, strict=True)
    ]
    for _, _, fine in train_data + test_data:
        truth = fine.meta["truth"]
        mito = [m["radius_um"] for m in truth["mitochondrion_list"]]
        print(
            f"[{name}] seed {fine.meta['seed']}: cell scale s = {truth['scale']:.3f}, "
            f"cell {2 * max(truth['cell']['semi_axes_um']):.2f} µm across, mitochondrion "
            f"radius {min(mito):.3f}–{max(mito):.3f} µm = {min(mito) / voxel_nm * 1000:.2f}–"
            f"{max(mito) / voxel_nm * 1000:.2f} voxels",
            flush=True,
        )
    print(
        f"[{name}] simulated {len(train_data) + len(test_data)} tomograms of {shape} "
        f"in {time.perf_counter() - t0:.0f} s; annotated voxels "
        f"{[int(np.count_nonzero(a)) for a in anns]}",
        flush=True,
    )

    # sxtflow: features of the annotated tomograms only, then the fused predictor
    samples = [
        (features.compute_features(v, spec, block=shape), a)
        for (v, _, _), a in zip(train_data, anns, strict=True)
    ]
    model, card = classify.train(
        samples,
        classes,
        spec=spec,
        n_estimators=args.trees,
        max_depth=args.depth,
        estimator=args.estimator,
        n_jobs=args.threads,
        seed=0,
        cv_folds=2,
        class_weight=args.class_weight,
    )
    del samples
    # scikit-image: same annotations
    X, y = [], []
    for (v, _, _), a in zip(train_data, anns, strict=True):
        f = skimage_features(v)
        X.append(f[a > 0])
        y.append(a[a > 0])
    sk = RandomForestClassifier(n_estimators=100, n_jobs=args.threads, random_state=0)
    sk.fit(np.concatenate(X), np.concatenate(y))

    scores = {"sxtflow": [], "sxtflow+refine": [], "skimage": []}
    for (vol, truth, _), seed in zip(test_data, seeds_test, strict=True):
        cyl = cylinder_mask(vol.shape)
        (lab, _), t_sx, c_sx = timed(
            classify.predict_volume,
            vol,
            model,
            card,
            block=args.block,
            n_jobs=args.threads,
            mask=cyl,
        )
        rules = None if args.default_rules else refine_rules(cell_type)
        ref = refine.refine_labels(lab, classes, (voxel_nm / 1000.0,) * 3, rules)
        fsk, t_f, c_f = timed(skimage_features, vol)
        lsk, t_p, c_p = timed(predict_segmenter, fsk, sk)
        del fsk
        lsk = lsk.astype(np.uint8)
        lsk[:, ~cyl] = 0
        speed.append((vol.size, t_sx, c_sx, t_f + t_p, c_f + c_p))
        for key, pred in (("sxtflow", lab), ("sxtflow+refine", ref), ("skimage", lsk)):
            df = dice_iou(pred, truth, classes)
            scores[key].append(dict(zip(df["class"], df["dice"], strict=True)))
        ours, theirs = scores["sxtflow+refine"][-1], scores["skimage"][-1]
        print(
            f"[{name}] seed {seed} Dice sxtflow+refine / skimage: "
            + ", ".join(
                f"{c} {ours[c]:.3f}/{theirs[c]:.3f}" for c in ("cell", *present[2:]) if c in ours
            ),
            flush=True,
        )
    for key, lst in scores.items():
        mean = {c: float(np.nanmean([d[c] for d in lst])) for c in lst[0]}
        rows.append((name, key, mean))
    print(
        f"[{name}] done in {time.perf_counter() - t0:.0f} s; CV: {card['cv'].get('f1')}", flush=True
    )
    return model, card, test_data[0][0]


_CHILD = r"""
import sys, time, numpy as np
from sxtflow import classify
def hwm():  # peak resident set of this process, bytes (ru_maxrss survives exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
vol = np.load(sys.argv[1])
model, card = classify.load_model(sys.argv[2])
base = hwm()
t = time.perf_counter()
lab, _ = classify.predict_volume(vol, model, card, block=tuple(int(b) for b in sys.argv[3].split(",")),
                                 n_jobs=int(sys.argv[4]))
dt = time.perf_counter() - t
print(base, hwm(), dt, int(lab.sum() > 0))
"""


def large_memory(vol, model, card, size, args):
    """Peak RSS of a fresh process predicting a ``size``³ tomogram (tiled from ``vol``)."""
    from sxtflow import classify

    big = np.pad(vol, [(0, max(0, size - n)) for n in vol.shape], mode="reflect")
    while any(n < size for n in big.shape):
        big = np.pad(big, [(0, max(0, size - n)) for n in big.shape], mode="reflect")
    big = np.ascontiguousarray(big[:size, :size, :size], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        vpath = os.path.join(tmp, "vol.npy")
        np.save(vpath, big)
        del big
        mpath = os.path.join(tmp, "model.skops")
        classify.save_model(mpath, model, card)
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                vpath,
                mpath,
                ",".join(map(str, args.block)),
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    base, peak, dt, _ = res.stdout.split()
    return int(base), int(peak), float(dt)


def main(argv=None):
    from sxtflow.classify import CLASS_WEIGHTS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer tomograms, 256³ memory test")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--large", type=int, default=None, help="edge (voxels) of the memory test; 0 skips it"
    )
    p.add_argument("--trees", type=int, default=50)
    p.add_argument(
        "--depth",
        type=lambda t: None if t.lower() == "none" else int(t),
        default=None,
        help="tree depth limit, or 'none' (the default: unlimited)",
    )
    p.add_argument(
        "--estimator",
        default="extra_trees",
        choices=["random_forest", "extra_trees"],
        help="sxtflow's ensemble (classify.train); extra_trees measured better in 8 of 9 classes",
    )
    p.add_argument("--sets", default=None, help="comma list of yeast,yeast65,lymphocyte")
    p.add_argument("--cache", default=None, help="directory to keep simulated tomograms in")
    p.add_argument(
        "--class-weight",
        default="none",
        choices=list(CLASS_WEIGHTS),
        help="sxtflow forest class weighting (classify.train)",
    )
    p.add_argument(
        "--no-rim",
        dest="rim",
        action="store_false",
        help="one-sided outlines (the annotator before 2026-11-26): simulate.annotate(rim=False)",
    )
    p.add_argument("--n-test", type=int, default=None, help="unseen tomograms per set")
    p.add_argument(
        "--default-rules",
        action="store_true",
        help="refine with refine.DEFAULT_RULES for every cell type (no yeast nucleus smoothing)",
    )
    p.add_argument(
        "--same-spec",
        action="store_true",
        help="FAST_SPEC features for every cell type (no σ = 8 Gaussian for lymphocytes)",
    )
    args = p.parse_args(argv)
    args.block = (64, 128, 128)
    large = args.large if args.large is not None else (256 if args.quick else 512)
    n_test = args.n_test or (1 if args.quick else 2)
    # the lymphocyte grid holds a 7–8 µm cell with its protrusions at its physical size
    # (cell scale s = 1): 112×128×128 shrank it to s ≈ 0.62–0.68, mitochondria to a radius
    # of 0.08–0.10 µm = 1.3–1.6 voxels (docs/segmentation.md)
    sets = {
        "yeast": ("yeast", (96, 112, 112), 50.0, None),
        "yeast65": ("yeast", (96, 112, 112), 50.0, 65.0),
        "lymphocyte": ("lymphocyte", (176, 184, 184), 64.0, None),
    }
    base_seed = {"yeast": 100, "yeast65": 200, "lymphocyte": 300}  # fixed per set
    chosen = (
        args.sets.split(",")
        if args.sets
        else (["yeast", "lymphocyte"] if args.quick else list(sets))
    )
    rows, speed = [], []
    t_all = time.perf_counter()
    first = None
    for name in chosen:
        cell_type, shape, voxel_nm, tilt = sets[name]
        seeds = [base_seed[name] + k for k in range(2 + n_test)]
        out = run_set(
            name, cell_type, shape, voxel_nm, seeds[:2], seeds[2:], tilt, args, rows, speed
        )
        first = first or out

    print()
    print(
        f"Dice on unseen tomograms (mean of {n_test} per set; ≤ 3 annotated slices per class "
        "on 2 training tomograms)"
    )
    cols = ["cell", "nucleus", "vacuole", "lipid_droplet", "mitochondrion", "cytoplasm", "ice"]
    print(f"{'set':<11} {'method':<15} " + " ".join(f"{c[:13]:>13}" for c in cols))
    for name, key, mean in rows:
        print(
            f"{name:<11} {key:<15} "
            + " ".join(f"{mean[c]:13.3f}" if c in mean else f"{'—':>13}" for c in cols)
        )
    print(
        f"{'target':<27} "
        + " ".join(f"{TARGETS[c]:13.2f}" if c in TARGETS else f"{'':>13}" for c in cols)
    )
    by = {(n, k): m for n, k, m in rows}
    wins, losses = [], []
    for name in chosen:
        for c in cols[:5]:
            if c in by[(name, "skimage")]:
                ours, theirs = by[(name, "sxtflow+refine")][c], by[(name, "skimage")][c]
                wins.append(ours > theirs)
                if ours <= theirs:
                    losses.append(f"{name} {c} {ours:.4f} ≤ {theirs:.4f}")
    print(
        f"sxtflow+refine beats skimage on {sum(wins)}/{len(wins)} (set, class) pairs"
        + (f"; not on: {', '.join(losses)}" if losses else "")
    )

    vox = sum(s[0] for s in speed)
    sx_w, sx_c = vox / sum(s[1] for s in speed), vox / sum(s[2] for s in speed)
    sk_w, sk_c = vox / sum(s[3] for s in speed), vox / sum(s[4] for s in speed)
    print()
    print(
        f"Prediction throughput over {len(speed)} unseen tomograms ({vox / 1e6:.1f} Mvoxel, "
        f"{args.threads} threads; features + classification; load avg "
        f"{os.getloadavg()[0]:.1f})"
    )
    print(f"  sxtflow  : {sx_w / 1e6:6.3f} Mvoxel/s wall, {sx_c / 1e6:6.3f} Mvoxel/CPU-s")
    print(f"  skimage  : {sk_w / 1e6:6.3f} Mvoxel/s wall, {sk_c / 1e6:6.3f} Mvoxel/CPU-s")
    print(f"  ratio    : {sx_w / sk_w:6.2f}× wall, {sx_c / sk_c:6.2f}× CPU (target ≥ 3×)")

    if large <= 0:
        return
    model, card, vol = first
    base, peak, dt = large_memory(vol, model, card, large, args)
    f32 = large**3 * 4
    print()
    print(
        f"Large tomogram {large}³ ({f32 / 2**20:.0f} MiB float32), block {args.block}, "
        f"{args.threads} threads: {dt:.0f} s ({large**3 / dt / 1e6:.2f} Mvoxel/s); peak RSS "
        f"{peak / 2**20:.0f} MiB = {peak / f32:.2f}× the float32 tomogram (target ≤ 4×; "
        f"before predicting, with the tomogram and model loaded: {base / 2**20:.0f} MiB)"
    )
    print(
        f"total {time.perf_counter() - t_all:.0f} s; this process peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB"
    )


if __name__ == "__main__":
    main()
