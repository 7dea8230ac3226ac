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

* sxtflow: :data:`sxtflow.segment.FAST_SPEC` features (lymphocytes: plus a Gaussian at
  σ = 8 voxels, see :func:`feature_spec`) →
  :func:`sxtflow.segment.train` (extremely randomised trees, 50 of unlimited depth,
  unweighted classes; ``--estimator random_forest --depth 14 --class-weight
  sqrt_balanced`` for the random forest used before) →
  :func:`sxtflow.segment.predict_volume` (fused block-wise features + classification,
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

    from sxtflow import recon, sim
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

    lac, fine = sim.simulate_cell(cell_type, shape, voxel_nm, seed=seed)
    theta = sim.tilt_angles(120, tilt_range_deg)
    proj = sim.project(lac, theta, photons=3000.0, blur_nm=40.0, seed=seed + 1)
    algorithm = "fbp" if tilt_range_deg is None else "sirt"
    vol = recon.reconstruct(proj, backend="builtin", algorithm=algorithm, iterations=100)
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


def refine_rules(cell_type, default=False):
    """Refinement rules per cell type: the defaults, plus for yeast a smooth nucleus.

    A yeast nucleus is a round body: protrusions and bites narrower than 0.3 µm are read
    from the cytoplasm's texture, so the nucleus is opened and closed with a ball of
    0.15 µm radius. Not for lymphocytes, whose nuclei may be indented and whose thin
    cytoplasm holds mitochondria next to the envelope (it costs them Dice there).
    ``default``: :data:`sxtflow.refine.DEFAULT_RULES` for both.
    """
    from sxtflow.segment import DEFAULT_RULES

    rules = {k: dict(v) for k, v in DEFAULT_RULES.items()}
    if cell_type == "yeast" and not default:
        rules["nucleus"] = {"smooth_radius_um": 0.15, **rules["nucleus"]}
    return rules


def without_boundary(rules):
    """The rules without the boundary step (``boundary_um``): refinement before issue 13."""
    return {k: {kk: vv for kk, vv in r.items() if kk != "boundary_um"} for k, r in rules.items()}


def feature_spec(cell_type, args):
    """Features per cell type: ``FAST_SPEC``, plus for lymphocytes a Gaussian at σ = 8 voxels.

    A lymphocyte's nucleus fills most of the cell and its euchromatin is close to the
    cytoplasm in LAC, so the forest read whole regions deep inside it as cytoplasm; a wide
    smoothing (0.5 µm at 64 nm) gives it the context. Only the Gaussian family gets the
    scale (``FeatureSpec.family_sigmas``), not all four (which doubled the prediction time
    and cost mitochondria). Not for yeast (measured: nucleus −0.006). ``--same-spec`` uses
    ``FAST_SPEC`` for both.
    """
    from sxtflow.segment import FAST_SPEC, FeatureSpec

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

    from sxtflow import segment, sim
    from sxtflow.core import cylinder_mask
    from sxtflow.labels import default_labels
    from sxtflow.segment import dice_iou

    table = default_labels()
    present = [c for c in CLASSES if not (cell_type == "lymphocyte" and c == "vacuole")]
    classes = {c: table.value(c) for c in present}
    spec = feature_spec(cell_type, args)
    t0 = time.perf_counter()
    train_data = [tomogram(cell_type, shape, voxel_nm, s, tilt, args.cache) for s in seeds_train]
    test_data = [tomogram(cell_type, shape, voxel_nm, s, tilt, args.cache) for s in seeds_test]
    anns = [
        sim.annotate(fine, present, slices_per_class=3, seed=s, rim=args.rim).data
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
        (segment.compute_features(v, spec, block=shape), a)
        for (v, _, _), a in zip(train_data, anns, strict=True)
    ]
    model, card = segment.train(
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
        fill_outlines=args.fill_outlines,
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
    refine_cpu = {"sxtflow+refine": 0.0}
    if args.compare_boundary:
        scores["refine before"] = []
        refine_cpu["refine before"] = 0.0
    for (vol, truth, _), seed in zip(test_data, seeds_test, strict=True):
        cyl = cylinder_mask(vol.shape)
        (lab, _), t_sx, c_sx = fused_predict(model, card, vol, args)
        rules = refine_rules(cell_type, args.default_rules)
        spacing = (voxel_nm / 1000.0,) * 3
        (ref, r_cpu) = timed(segment.refine_labels, lab, classes, spacing, rules, lac=vol)[::2]
        refine_cpu["sxtflow+refine"] += r_cpu
        if args.compare_boundary:  # the same prediction refined as before issue 13
            plain = without_boundary(rules)
            (ref0, r_cpu) = timed(segment.refine_labels, lab, classes, spacing, plain)[::2]
            refine_cpu["refine before"] += r_cpu
            df = dice_iou(ref0, truth, classes)
            scores["refine before"].append(dict(zip(df["class"], df["dice"], strict=True)))
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
        f"[{name}] done in {time.perf_counter() - t0:.0f} s; refine CPU "
        + ", ".join(f"{k} {v:.1f} s" for k, v in refine_cpu.items())
        + f"; CV: {card['cv'].get('f1')}",
        flush=True,
    )
    return model, card, test_data[0][0]


# --------------------------------------------------------------------------- robustness suite

#: The suite's central case (issue 13): interior strokes kept 2 voxels from every edge with
#: gaps, ≤ 3 slices per class, thin bent tubular mitochondria (radius 80–120 nm = 2–3
#: voxels), blur 0.9 voxel, white noise 0.035 µm⁻¹, 40 nm voxels, full rotation (an
#: isotropic point-spread function, :func:`sxtflow.simulate.degrade`).
CENTRAL = {
    "voxel_nm": 40.0,
    "blur_vox": 0.9,
    "noise": 0.035,
    "imaging": "image",  # "image": degrade(); "fbp": full rotation; "sirt60": ±60° tilt
    "mode": "interior",
    "margin": 2,
    "slices": 3,
    "condition": {"mitochondrion_radius_um": (0.08, 0.12), "mitochondrion_bend": 0.5},
}

#: Each variant changes one thing of the central case (what real data varies in).
VARIANTS = {
    "central": {},
    "margin1": {"margin": 1},
    "margin3": {"margin": 3},
    "contour": {"mode": "contour"},
    "full_slices": {"mode": "slices", "slices": 2},
    "rim": {"mode": "scribbles", "rim": True},
    "budget1": {"slices": 1},
    "small_droplets": {"condition": {**CENTRAL["condition"], "lipid_radius_um": (0.1, 0.16)}},
    "flat_vacuoles": {"condition": {**CENTRAL["condition"], "vacuole_flatness": 0.5}},
    "thick_mito": {"condition": {}},
    "blur0.5": {"blur_vox": 0.5},
    "blur1.5": {"blur_vox": 1.5},
    "noise0.06": {"noise": 0.06},
    "voxel25": {"voxel_nm": 25.0},
    "voxel60": {"voxel_nm": 60.0},
    "fbp": {"imaging": "fbp"},
    "sirt60": {"imaging": "sirt60"},
}

#: Variants run by default (one of each kind of change); ``--all`` runs every one.
DEFAULT_VARIANTS = (
    "central",
    "margin1",
    "contour",
    "budget1",
    "thick_mito",
    "blur1.5",
    "noise0.06",
    "voxel60",
    "fbp",
)

#: Seeds of the suite's cells: 2 training tomograms, tuning tomograms (every choice was
#: made on the central case's) and held-out tomograms (looked at only with the final
#: settings; reported apart). Variants other than the central case score the first two
#: of each unless ``--n-test`` says otherwise.
SUITE_TRAIN = (1000, 1001)
SUITE_TUNE = (1002, 1003, 1004)
SUITE_HELD_OUT = (1005, 1006, 1007)

#: Field of the suite's yeast cells in µm (z, y, x): a 4–5 µm cell at every voxel size.
SUITE_FIELD_UM = (4.8, 5.44, 5.44)


def _key(obj) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def suite_tomogram(variant, seed, cache=None):
    """(LAC µm⁻¹ float32, truth classes uint8, fine labels Volume) of one suite cell.

    With ``cache`` (a directory) each tomogram is kept as ``suite_<key>.npz`` (the key
    hashes seed, voxel size, blur, noise, imaging and morphology), so later runs and
    other variants with the same cells reuse it.
    """
    import hashlib
    import json

    from sxtflow import recon, sim
    from sxtflow.io import Volume
    from sxtflow.labels import default_labels

    v = {**CENTRAL, **variant}
    vox = float(v["voxel_nm"])
    shape = tuple(int(round(f * 1000 / vox / 2)) * 2 for f in SUITE_FIELD_UM)
    path = None
    if cache:
        key = json.dumps(
            [seed, vox, v["blur_vox"], v["noise"], v["imaging"], v["condition"]], sort_keys=True
        )
        path = os.path.join(cache, f"suite_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz")
        if os.path.exists(path):
            d = np.load(path)
            return d["vol"], d["truth"], Volume(d["fine"], vox, json.loads(str(d["meta"])))
    lac, fine = sim.simulate_cell("yeast", shape, vox, seed=seed, condition=v["condition"])
    if v["imaging"] == "image":
        vol = sim.degrade(lac, blur_vox=v["blur_vox"], noise_per_um=v["noise"], seed=seed + 1)
        vol = np.asarray(vol.data, dtype=np.float32)
    else:
        tilt = None if v["imaging"] == "fbp" else 60.0
        theta = sim.tilt_angles(120, tilt)
        proj = sim.project(lac, theta, photons=3000.0, blur_nm=v["blur_vox"] * vox, seed=seed + 1)
        algorithm = "fbp" if tilt is None else "sirt-tv"
        vol = recon.reconstruct(proj, backend="builtin", algorithm=algorithm, iterations=100)
        vol = np.asarray(vol.data, dtype=np.float32)
    truth = default_labels().to_classes(fine.data, CLASSES)
    if path:
        os.makedirs(cache, exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, vol=vol, truth=truth, fine=fine.data, meta=json.dumps(fine.meta))
        os.replace(tmp, path)
    return vol, truth, fine


def suite_annotation(variant, fine, seed, z_slices=None, slices=None):
    from sxtflow import sim

    v = {**CENTRAL, **variant}
    return sim.annotate(
        fine,
        CLASSES,
        slices_per_class=slices or v["slices"],
        seed=seed,
        mode=v["mode"],
        margin=v["margin"],
        rim=v.get("rim", False),
        z_slices=z_slices,
    ).data


def scores(pred, truth, classes, voxel_um):
    """Dice and signed relative volume error per class (and the whole cell)."""
    from sxtflow.segment import dice_iou

    df = dice_iou(pred, truth, classes)
    dice = dict(zip(df["class"], df["dice"], strict=True))
    vol = {}
    for name, value in classes.items():
        n_true = int(np.count_nonzero(truth == value))
        if n_true:
            vol[name] = np.count_nonzero(pred == value) / n_true - 1.0
    ice = classes["ice"]
    n_true = int(np.count_nonzero((truth > 0) & (truth != ice)))
    vol["cell"] = np.count_nonzero((pred > 0) & (pred != ice)) / n_true - 1.0
    return dice, vol


#: Methods the suite compares (both refine the same predictions of the same model):
#: ``today``: the segmentation benchmark's refinement before issue 13 (no tomogram);
#: ``boundary``: the defaults (:func:`refine_rules`), whose ``boundary_um`` places each
#: object's surface where the LAC puts it, and removed pieces take the neighbour nearest
#: in LAC.
SUITE_METHODS = {"today": {"lac": False}, "boundary": {"lac": True}}

#: Version of ``segment.fill_outlines`` in the suite's cache keys: 2 = an outline that
#: contains other classes is filled only where they are not (session 21).
FILL_RULE = 2

#: Training settings of the suite (the segmentation benchmark's).
SUITE_TRAINING = {"trees": 50, "depth": None, "estimator": "extra_trees", "class_weight": "none"}


def suite_classes():
    from sxtflow.labels import default_labels

    table = default_labels()
    return {c: table.value(c) for c in CLASSES}


def suite_train(train, anns, args):
    from sxtflow import segment

    spec = segment.FAST_SPEC
    samples = [
        (segment.compute_features(v, spec, block=(64, 128, 128)), a)
        for (v, _, _), a in zip(train, anns, strict=True)
    ]
    return segment.train(
        samples,
        suite_classes(),
        spec=spec,
        n_estimators=SUITE_TRAINING["trees"],
        max_depth=SUITE_TRAINING["depth"],
        estimator=SUITE_TRAINING["estimator"],
        n_jobs=args.threads,
        seed=args.train_seed,
        cv_folds=0,
        class_weight=SUITE_TRAINING["class_weight"],
        fill_outlines=args.fill_outlines,
    )


def fused_predict(model, card, vol, args, out_uncertainty=None):
    """((labels, probabilities), wall s, CPU s) of the fused predictor in the sample
    cylinder (full resolution)."""
    from sxtflow import segment
    from sxtflow.core import cylinder_mask

    return timed(
        segment.predict_volume,
        vol,
        model,
        card,
        block=args.block,
        n_jobs=args.threads,
        mask=cylinder_mask(vol.shape),
        out_uncertainty=out_uncertainty,
    )


def suite_predict(model, card, vol, args, uncertainty=False):
    """(labels, uncertainty or None, CPU seconds) of the fused predictor."""
    unc = np.zeros(vol.shape, np.float32) if uncertainty else None
    (lab, _), _, cpu = fused_predict(model, card, vol, args, unc)
    return lab, unc, cpu


def suite_refine(lab, vol, classes, voxel_nm, method):
    """Labels refined with one of :data:`SUITE_METHODS`; CPU seconds."""
    from sxtflow import segment

    lac = SUITE_METHODS[method]["lac"]
    rules = refine_rules("yeast")
    if not lac:
        rules = without_boundary(rules)
    t = time.process_time()
    out = segment.refine_labels(
        lab, classes, (voxel_nm / 1000.0,) * 3, rules, lac=vol if lac else None
    )
    return out, time.process_time() - t


class _Predictions:
    """Predicted labels of one variant's model, cached on disk by what decides them."""

    def __init__(self, name, variant, args):
        self.variant, self.args, self.model = variant, args, None
        v = {**CENTRAL, **variant}
        ann = [v["mode"], v["margin"], v["slices"], v.get("rim", False), SUITE_TRAIN]
        # predictions cached before outlines were filled (off) keep their key; the fill
        # that leaves out what a containing outline holds (FILL_RULE 2) has its own
        fill = [{"fill_outlines": True, "rule": FILL_RULE}] if args.fill_outlines else []
        seed = [{"train_seed": args.train_seed}] if args.train_seed else []
        self.tag = [name, v, ann, SUITE_TRAINING, *fill, *seed]
        self.cache = args.cache

    def _train(self):
        train = [suite_tomogram(self.variant, s, self.cache) for s in SUITE_TRAIN]
        anns = [
            suite_annotation(self.variant, fine, s)
            for (_, _, fine), s in zip(train, SUITE_TRAIN, strict=True)
        ]
        self.model = suite_train(train, anns, self.args)
        self.annotated = {
            c: int(sum(np.count_nonzero(a == v) for a in anns)) for c, v in suite_classes().items()
        }

    def __call__(self, seed, vol):
        """(labels, CPU seconds of prediction: measured now or when it was cached)."""
        path = None
        if self.cache:
            path = os.path.join(self.cache, f"pred_{_key([self.tag, seed])}.npz")
            if os.path.exists(path):
                d = np.load(path)
                return d["labels"], float(d["cpu"])
        if self.model is None:
            self._train()
        lab, _, cpu = suite_predict(*self.model, vol, self.args)
        if path:
            tmp = path + ".tmp.npz"
            np.savez_compressed(tmp, labels=lab, cpu=cpu)
            os.replace(tmp, path)
        return lab, cpu


SUITE_COLS = ["cell", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"]


def run_suite(args):
    """Every variant: train on 2 annotated tomograms, score the unseen ones (Dice, volume).

    Tuning and held-out tomograms are scored and reported apart.
    """
    classes = suite_classes()
    names = (
        args.variants.split(",")
        if args.variants
        else (list(VARIANTS) if args.all else list(DEFAULT_VARIANTS))
    )
    methods = args.methods.split(",") if args.methods else list(SUITE_METHODS)
    cols = SUITE_COLS
    rows = []  # (variant, split, method, [(dice, verr) per tomogram], predict CPU, refine CPU)
    t_all = time.perf_counter()
    for name in names:
        variant = VARIANTS[name]
        vox = float({**CENTRAL, **variant}["voxel_nm"])
        n = args.n_test or (3 if name == "central" else 2)
        splits = {"tuning": SUITE_TUNE[:n], "held-out": SUITE_HELD_OUT[:n]}
        t0 = time.perf_counter()
        predict = _Predictions(name, variant, args)
        for split, seeds in splits.items():
            per = {m: [] for m in methods}
            cpu = {m: 0.0 for m in methods}
            pcpu = 0.0
            for seed in seeds:
                vol, truth, _ = suite_tomogram(variant, seed, args.cache)
                lab, c = predict(seed, vol)
                pcpu += c
                for m in methods:
                    ref, rc = suite_refine(lab, vol, classes, vox, m)
                    cpu[m] += rc
                    per[m].append(scores(ref, truth, classes, vox / 1000))
            for m in methods:
                rows.append((name, split, m, per[m], pcpu, cpu[m]))
                dice = {c: np.nanmean([d.get(c, np.nan) for d, _ in per[m]]) for c in cols}
                print(
                    f"[{name}/{split}/{m}] seeds {list(seeds)} Dice "
                    + " ".join(f"{c[:4]} {dice[c]:.3f}" for c in cols)
                    + " | ΔV per tomogram "
                    + " ".join(
                        f"{c[:4]} " + "/".join(f"{100 * v.get(c, np.nan):+.1f}" for _, v in per[m])
                        for c in cols
                    )
                    + f" % | predict {pcpu:.0f} CPU-s, refine {cpu[m]:.0f} CPU-s"
                    + f" | {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
        if predict.model is not None:
            print(
                f"[{name}] annotated voxels (2 tomograms): {predict.annotated}; filled inside "
                f"closed outlines: {predict.model[1].get('filled_voxels') or 'off'}",
                flush=True,
            )
    print_suite(rows, methods, cols)
    print(
        f"suite: {len(names)} variants in {time.perf_counter() - t_all:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    return rows


def _mean(per, c, f):
    return float(np.nanmean([f(v.get(c, np.nan)) for v in per]))


def print_suite(rows, methods, cols):
    """Tables (tuning, held-out), the worst case per class and the variants where the
    boundary step is worse than today's refinement."""
    head = " ".join(f"{c[:8]:>8}" for c in cols)
    for split in ("tuning", "held-out"):
        sel = [r for r in rows if r[1] == split]
        if not sel:
            continue
        seeds = SUITE_TUNE if split == "tuning" else SUITE_HELD_OUT
        print()
        print(
            f"Robustness suite, {split} tomograms (central: {list(seeds)}, other variants: "
            f"{list(seeds[:2])}; training {list(SUITE_TRAIN)})"
        )
        print(f"{'variant':<15}{'method':<9} Dice: {head} | mean |ΔV| %: {head}")
        for name, _, m, per, _, _ in sel:
            dice = [_mean([d for d, _ in per], c, float) for c in cols]
            verr = [100 * _mean([v for _, v in per], c, abs) for c in cols]
            print(
                f"{name:<15}{m:<9}       "
                + " ".join(f"{x:8.3f}" for x in dice)
                + " |              "
                + " ".join(f"{x:8.1f}" for x in verr)
            )
        for m in methods:
            mine = [r for r in sel if r[2] == m]
            dice = {
                c: min(
                    mine,
                    key=lambda r, c=c: np.nan_to_num(_mean([d for d, _ in r[3]], c, float), nan=9),
                )
                for c in cols
            }
            verr = {
                c: max(
                    mine,
                    key=lambda r, c=c: np.nan_to_num(_mean([v for _, v in r[3]], c, abs), nan=-9),
                )
                for c in cols
            }
            print(
                f"worst case ({split}, {m}): Dice "
                + ", ".join(
                    f"{c} {_mean([d for d, _ in dice[c][3]], c, float):.3f} ({dice[c][0]})"
                    for c in cols
                )
                + "; mean |ΔV| "
                + ", ".join(
                    f"{c} {100 * _mean([v for _, v in verr[c][3]], c, abs):.1f} % ({verr[c][0]})"
                    for c in cols
                )
            )
        if {"today", "boundary"} <= set(methods):
            by = {(r[0], r[2]): r[3] for r in sel}
            worse = []
            for name in dict.fromkeys(r[0] for r in sel):
                for c in cols:
                    dt = _mean([d for d, _ in by[(name, "today")]], c, float)
                    db = _mean([d for d, _ in by[(name, "boundary")]], c, float)
                    vt = _mean([v for _, v in by[(name, "today")]], c, abs)
                    vb = _mean([v for _, v in by[(name, "boundary")]], c, abs)
                    if db < dt - 0.005 or vb > vt + 0.01:
                        worse.append(
                            f"{name} {c}: Dice {dt:.3f} → {db:.3f}, |ΔV| {100 * vt:.1f} → "
                            f"{100 * vb:.1f} %"
                        )
            print(
                f"boundary worse than today ({split}; Dice lower by > 0.005 or mean |ΔV| higher "
                f"by > 1 point): " + ("; ".join(worse) if worse else "none")
            )
    cpu = {m: sum(r[5] for r in rows if r[2] == m) for m in methods}
    pcpu = sum(r[4] for r in rows if r[2] == methods[0])
    print(
        f"CPU: prediction {pcpu:.0f} s (measured when first predicted); refine "
        + ", ".join(f"{m} {c:.0f} s" for m, c in cpu.items())
    )


# --------------------------------------------------------------------------- active learning

#: Active-learning benchmark: start from 1 annotated slice per class (interior strokes) on
#: the 2 training tomograms, add ``ACTIVE_K`` slices per training tomogram, either those
#: ``suggest_slices`` proposes (what ``annotation_suggestions.json`` holds) or random ones
#: (``ACTIVE_RANDOM`` draws), retrain, score the tuning tomograms.
ACTIVE_K = 3
ACTIVE_RANDOM = 3
ACTIVE_REPEATS = 3


def _add_slices(ann, fine, zs, seed):
    """The annotation plus the virtual annotator's strokes in slices ``zs`` (z indices)."""
    extra = suite_annotation({}, fine, seed, z_slices=zs)
    out = ann.copy()
    new = (out == 0) & (extra > 0)
    out[new] = extra[new]
    return out


def _cell_slices(fine):
    """z indices where the cell is (any label but 0 and ice)."""
    cls = suite_classes()
    from sxtflow.labels import default_labels

    truth = default_labels().to_classes(fine.data, CLASSES)
    inside = (truth > 0) & (truth != cls["ice"])
    return np.flatnonzero(inside.reshape(inside.shape[0], -1).any(axis=1))


def run_active(args):
    """Suggested vs random extra slices: Dice of the worst class after retraining."""
    from sxtflow import segment

    classes = suite_classes()
    ice = classes["ice"]
    vox = float(CENTRAL["voxel_nm"])
    train = [suite_tomogram({}, s, args.cache) for s in SUITE_TRAIN]
    n_test = args.n_test or 2
    test = [suite_tomogram({}, s, args.cache) for s in SUITE_TUNE[:n_test]]
    method = "boundary"

    def score(anns):
        model = suite_train(train, anns, args)
        per = []
        for vol, truth, _ in test:
            lab, _, _ = suite_predict(*model, vol, args)
            ref, _ = suite_refine(lab, vol, classes, vox, method)
            per.append(scores(ref, truth, classes, vox / 1000)[0])
        dice = {c: float(np.nanmean([d.get(c, np.nan) for d in per])) for c in SUITE_COLS}
        return dice, model

    results = []  # (repeat, start dice, suggested dice, [random dice])
    t0 = time.perf_counter()
    repeats, draws = args.repeats or ACTIVE_REPEATS, args.draws or ACTIVE_RANDOM
    for rep in range(repeats):
        ann_seeds = [s + 100 * rep for s in SUITE_TRAIN]
        start = [
            suite_annotation({}, fine, s, slices=1)
            for (_, _, fine), s in zip(train, ann_seeds, strict=True)
        ]
        d0, model = score(start)
        suggested = []
        for (vol, _, fine), a, s in zip(train, start, ann_seeds, strict=True):
            lab, unc, _ = suite_predict(*model, vol, args, uncertainty=True)
            zs = [
                z
                for z, _ in segment.suggest_slices(
                    unc, lab, n=ACTIVE_K, annotated=a, outside=(0, ice)
                )
            ]
            suggested.append(_add_slices(a, fine, zs, s + 7))
        d_sug, _ = score(suggested)
        d_rand = []
        for draw in range(draws):
            rng = np.random.default_rng([rep, draw, 13])
            rand = []
            for (_, _, fine), a, s in zip(train, start, ann_seeds, strict=True):
                taken = np.flatnonzero(a.reshape(a.shape[0], -1).any(axis=1))
                free = [z for z in _cell_slices(fine) if z not in set(taken)]
                zs = sorted(int(z) for z in rng.choice(free, size=ACTIVE_K, replace=False))
                rand.append(_add_slices(a, fine, zs, s + 7))
            d_rand.append(score(rand)[0])
        results.append((rep, d0, d_sug, d_rand))
        worst = min(SUITE_COLS, key=lambda c: d0[c])
        print(
            f"[active {rep}] start: "
            + " ".join(f"{c[:4]} {d0[c]:.3f}" for c in SUITE_COLS)
            + f" | worst {worst}: start {d0[worst]:.3f}, + suggested {d_sug[worst]:.3f}, "
            + "+ random "
            + "/".join(f"{d[worst]:.3f}" for d in d_rand)
            + f" | {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    print()
    print(
        f"Active learning (central case; start: 1 slice per class on {list(SUITE_TRAIN)}; "
        f"+{ACTIVE_K} slices per training tomogram; scored on {list(SUITE_TUNE[:n_test])}, "
        f"refine '{method}'; {repeats} repeats × {draws} random draws)"
    )
    gains_s, gains_r, beats, n_draws = [], [], 0, 0
    for rep, d0, d_sug, d_rand in results:
        worst = min(SUITE_COLS, key=lambda c: d0[c])
        g_s = d_sug[worst] - d0[worst]
        g_r = float(np.mean([d[worst] for d in d_rand])) - d0[worst]
        m_s = min(d_sug[c] for c in SUITE_COLS) - min(d0[c] for c in SUITE_COLS)
        m_r = float(np.mean([min(d[c] for c in SUITE_COLS) for d in d_rand])) - min(
            d0[c] for c in SUITE_COLS
        )
        gains_s.append(g_s)
        gains_r.append(g_r)
        beats += sum(d_sug[worst] > d[worst] for d in d_rand)
        n_draws += len(d_rand)
        print(
            f"repeat {rep}: worst class {worst} {d0[worst]:.3f}: + suggested {g_s:+.3f}, "
            f"+ random {g_r:+.3f} (mean of {len(d_rand)}; "
            + "/".join(f"{d[worst] - d0[worst]:+.3f}" for d in d_rand)
            + f"); lowest Dice of any class: + suggested {m_s:+.3f}, + random {m_r:+.3f}"
        )
    diff = np.subtract(gains_s, gains_r)
    se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else float("nan")
    print(
        f"worst class's Dice gain, mean over repeats: suggested {np.mean(gains_s):+.3f}, "
        f"random {np.mean(gains_r):+.3f}; suggested ahead in "
        f"{sum(s > r for s, r in zip(gains_s, gains_r, strict=True))} of {len(gains_s)} repeats "
        f"and of {beats} of {n_draws} random draws; suggested − random {diff.mean():+.3f} "
        f"± {se:.3f} (standard error over repeats); load average {os.getloadavg()[0]:.1f}"
    )
    return results


# --------------------------------------------------------------------------- the demo, re-refined


def run_demo(args):
    """A finished demo run (``make demo``), each prediction refined with and without the
    boundary step in this process: Dice per class (min / median / max over the samples
    that were not annotated) and the refine CPU time of both."""
    import yaml

    from sxtflow import io, segment
    from sxtflow.labels import default_labels
    from sxtflow.options import with_defaults
    from sxtflow.segment import dice_iou, read_truth

    root = args.demo
    with open(args.demo_config) as fh:
        cfg = with_defaults(yaml.safe_load(fh))  # the refine rules the pipeline would use
    table = default_labels()
    classes = {c: table.value(c) for c in cfg["classes"]}
    rules = cfg["refine"]
    runs = {"refine before": without_boundary(rules), "refine now": rules}
    samples = sorted(
        d
        for d in os.listdir(os.path.join(root, "results"))
        if os.path.exists(os.path.join(root, "results", d, "prediction.mrc"))
    )
    with open(os.path.join(root, cfg["samples"])) as fh:
        sheet = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    col = {k: i for i, k in enumerate(sheet[0])}
    annotated = {r[0] for r in sheet[1:] if len(r) > col["annotation"] and r[col["annotation"]]}
    dice = {k: [] for k in runs}
    cpu = dict.fromkeys(runs, 0.0)
    for name in samples:
        if name in annotated:
            continue
        d = os.path.join(root, "results", name)
        pred = io.read_volume(os.path.join(d, "prediction.mrc"))
        lac = np.asarray(io.read_volume(os.path.join(d, "tomogram.mrc")).data, np.float32)
        truth = read_truth(os.path.join(d, "truth", "labels.mrc"), classes)[0].data
        for k, r in runs.items():
            (out, c) = timed(
                segment.refine_labels, pred.data, classes, pred.spacing_um, r, lac=lac
            )[::2]
            cpu[k] += c
            df = dice_iou(np.where(truth != 0, out, 0), truth, classes)
            dice[k].append(dict(zip(df["class"], df["dice"], strict=True)))
        print(
            f"[demo] {name}: "
            + ", ".join(
                f"{c} {dice['refine before'][-1][c]:.3f}/{dice['refine now'][-1][c]:.3f}"
                for c in ("cell", *list(classes)[2:])
            ),
            flush=True,
        )
    print()
    print(f"Demo ({root}), {len(dice['refine now'])} unseen cells, Dice min / median / max")
    for c in ("cell", *list(classes)[2:]):
        line = []
        for k in runs:
            v = np.array([x[c] for x in dice[k]])
            line.append(f"{k}: {v.min():.3f} / {np.median(v):.3f} / {v.max():.3f}")
        delta = np.median([x[c] for x in dice["refine now"]]) - np.median(
            [x[c] for x in dice["refine before"]]
        )
        print(f"  {c:<14} " + "   ".join(line) + f"   Δ median {delta:+.3f}")
    print("refine CPU: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()))


_CHILD = r"""
import sys, time, numpy as np
from sxtflow import segment
def hwm():  # peak resident set of this process, bytes (ru_maxrss survives exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
vol = np.load(sys.argv[1])
model, card = segment.load_model(sys.argv[2])
base = hwm()
t = time.perf_counter()
lab, _ = segment.predict_volume(vol, model, card, block=tuple(int(b) for b in sys.argv[3].split(",")),
                                 n_jobs=int(sys.argv[4]))
dt = time.perf_counter() - t
print(base, hwm(), dt, int(lab.sum() > 0))
"""


def large_memory(vol, model, card, size, args):
    """Peak RSS of a fresh process predicting a ``size``³ tomogram (tiled from ``vol``)."""
    from sxtflow import segment

    big = np.pad(vol, [(0, max(0, size - n)) for n in vol.shape], mode="reflect")
    while any(n < size for n in big.shape):
        big = np.pad(big, [(0, max(0, size - n)) for n in big.shape], mode="reflect")
    big = np.ascontiguousarray(big[:size, :size, :size], dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        vpath = os.path.join(tmp, "vol.npy")
        np.save(vpath, big)
        del big
        mpath = os.path.join(tmp, "model.skops")
        segment.save_model(mpath, model, card)
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
    from sxtflow.segment import CLASS_WEIGHTS

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
        help="sxtflow's ensemble (segment.train); extra_trees measured better in 8 of 9 classes",
    )
    p.add_argument("--sets", default=None, help="comma list of yeast,yeast65,lymphocyte")
    p.add_argument("--cache", default=None, help="directory to keep simulated tomograms in")
    p.add_argument(
        "--class-weight",
        default="none",
        choices=list(CLASS_WEIGHTS),
        help="sxtflow forest class weighting (segment.train)",
    )
    p.add_argument(
        "--fill-outlines",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sxtflow: fill closed outlines before training (segment.train fill_outlines)",
    )
    p.add_argument(
        "--train-seed",
        type=int,
        default=0,
        help="suite: the forest's seed (segment.train seed; 0 as before), for its spread",
    )
    p.add_argument(
        "--no-rim",
        dest="rim",
        action="store_false",
        help="one-sided outlines (the annotator before 2026-11-26): sim.annotate(rim=False)",
    )
    p.add_argument("--n-test", type=int, default=None, help="unseen tomograms per set")
    p.add_argument(
        "--default-rules",
        action="store_true",
        help="refine with segment.DEFAULT_RULES for every cell type (no yeast nucleus smoothing)",
    )
    p.add_argument(
        "--compare-boundary",
        action="store_true",
        help="also refine every prediction without the boundary step (row 'refine before')",
    )
    p.add_argument(
        "--same-spec",
        action="store_true",
        help="FAST_SPEC features for every cell type (no σ = 8 Gaussian for lymphocytes)",
    )
    p.add_argument(
        "--suite",
        action="store_true",
        help="run the robustness suite (VARIANTS) instead of the yeast/lymphocyte comparison",
    )
    p.add_argument(
        "--variants",
        default=None,
        help="comma list of suite variants (default: DEFAULT_VARIANTS; --all: every one)",
    )
    p.add_argument("--all", action="store_true", help="suite: every variant of VARIANTS")
    p.add_argument("--repeats", type=int, default=None, help="--active: repeats (default 3)")
    p.add_argument("--draws", type=int, default=None, help="--active: random draws (default 3)")
    p.add_argument("--methods", default=None, help="comma list of SUITE_METHODS (default all)")
    p.add_argument(
        "--demo",
        default=None,
        help="a project directory with a finished demo run: its predictions re-refined with "
        "and without the boundary step",
    )
    p.add_argument("--demo-config", default="config/config.yaml", help="the demo's config")
    p.add_argument(
        "--active",
        action="store_true",
        help="the active-learning benchmark: suggested vs random extra slices (central case)",
    )
    args = p.parse_args(argv)
    args.block = (64, 128, 128)
    if args.suite:
        run_suite(args)
        return
    if args.active:
        run_active(args)
        return
    if args.demo:
        run_demo(args)
        return
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
