"""Quantification benchmark: the numbers of the "quantify what the cell is made of" issue.

Prints one table per part:

1. analytic balls and ellipsoids (radius ≥ 10 voxels, isotropic and anisotropic voxels):
   volume, surface area, sphericity, elongation/flatness errors (sxtflow.measure), and the
   peer scikit-image ``regionprops`` (voxel-count volume) on the same masks;
2. surface-to-surface distances between two analytic balls (sxtflow.relations) against the
   analytic gap, and the peer (a full-volume scipy Euclidean distance transform sampled at
   the same surface voxels): error in voxels and time ratio;
3. chromatin: heterochromatin fraction on simulated lymphocytes (truth LAC + noise, and one
   project → FBP reconstruction), GMM and Otsu;
4. protrusions on simulated lymphocytes' truth masks: recall, type accuracy, length error;
5. a 512³ cell with ~50 objects: measure_objects + relations + class meshes (+ GLB), time
   and peak memory (run in a child process so its peak RSS is its own).

Usage: ``python benchmarks/quantification.py [--quick]`` (``--quick``: fewer seeds, 256³).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy import ndimage

from sxtflow.core import Volume
from sxtflow.quantify import instances, measure_objects

CLASSES = {"ice": 1, "cytoplasm": 2, "nucleus": 4, "vacuole": 7, "lipid_droplet": 8}


def ellipsoid(shape, centre, semi):
    g = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((x - c) / a) ** 2 for x, c, a in zip(g, centre, semi, strict=True)) <= 1


def ellipsoid_area(a, b, c):
    p = 1.6075
    return 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


def part_shapes() -> pd.DataFrame:
    from skimage.measure import regionprops_table

    rows = []
    cases = [
        ("ball r10", (0.2, 0.2, 0.2), (0.02,) * 3),
        ("ball r16", (0.32, 0.32, 0.32), (0.02,) * 3),
        ("ball aniso 10/20 vox", (0.4, 0.4, 0.4), (0.04, 0.02, 0.02)),
        ("ellipsoid 10:16:24", (0.2, 0.32, 0.48), (0.02,) * 3),
        ("ellipsoid 24:16:10", (0.48, 0.32, 0.2), (0.02,) * 3),
        ("ellipsoid aniso", (0.6, 0.4, 0.3), (0.04, 0.02, 0.02)),
    ]
    for name, semi, sp in cases:
        shape = [2 * int(np.ceil(a / s)) + 7 for a, s in zip(semi, sp, strict=True)]
        centre = [(n - 1) / 2 + o for n, o in zip(shape, (0.31, 0.17, 0.23), strict=True)]
        mask = ellipsoid(shape, centre, [a / s for a, s in zip(semi, sp, strict=True)])
        lab = np.where(mask, 4, 1).astype(np.uint8)
        vox = [s * 1000 for s in sp]
        t = time.perf_counter()
        df = measure_objects(Volume(lab, vox), Volume(mask.astype(np.float32), vox), CLASSES)
        t_ours = time.perf_counter() - t
        row = df.set_index("class").loc["nucleus"]
        t = time.perf_counter()
        peer = regionprops_table(mask.astype(np.uint8), spacing=sp, properties=("area",))
        t_peer = time.perf_counter() - t
        a, b, c = sorted(semi, reverse=True)
        v = 4 / 3 * np.pi * a * b * c
        rows.append(
            {
                "shape": name,
                "volume_err_%": 100 * (row["volume_um3"] / v - 1),
                "peer_volume_err_%": 100 * (float(peer["area"][0]) / v - 1),
                "area_err_%": 100 * (row["surface_um2"] / ellipsoid_area(a, b, c) - 1),
                "sphericity": row["sphericity"],
                "elongation_err_%": 100 * (row["elongation"] / (b / a) - 1),
                "flatness_err_%": 100 * (row["flatness"] / (c / b) - 1),
                "time_s": t_ours,
                "peer_time_s": t_peer,
            }
        )
    return pd.DataFrame(rows)


def part_distances() -> pd.DataFrame:
    from sxtflow.quantify import object_relations, surface_voxels

    rows = []
    for sp in ((0.02, 0.02, 0.02), (0.04, 0.02, 0.02)):
        for gap in (0.0, 0.05, 0.1, 0.23, 0.5):
            shape = (int(2.0 / sp[0]), int(1.2 / sp[1]), int(2.0 / sp[2]))
            c1 = np.array([0.81, 0.603, 0.52])
            u = np.array([0.6, 0.0, 0.8])
            r1, r2 = 0.3, 0.22
            c2 = c1 + (r1 + r2 + gap) * u
            g = np.ogrid[tuple(slice(0, n) for n in shape)]
            b1 = sum((x * s - c) ** 2 for x, s, c in zip(g, sp, c1, strict=True)) <= r1**2
            b2 = sum((x * s - c) ** 2 for x, s, c in zip(g, sp, c2, strict=True)) <= r2**2
            lab = np.zeros(shape, np.uint8)
            lab[b1], lab[b2] = 4, 8
            inst, table = instances(lab, {"nucleus": 4, "lipid_droplet": 8})
            t = time.perf_counter()
            rel = object_relations(
                inst, table, sp, np.ones(shape, bool), surface_um2={1: 1.0, 2: 1.0}
            )
            t_ours = time.perf_counter() - t
            d = float(rel.set_index("class").loc["lipid_droplet", "dist_nucleus_um"])
            # peer: full-volume EDT of "not nucleus", sampled at the droplet's surface voxels
            t = time.perf_counter()
            edt = ndimage.distance_transform_edt(lab != 4, sampling=sp)
            d_peer = float(edt[surface_voxels(lab == 8)].min()) - float(np.mean(sp))
            t_peer = time.perf_counter() - t
            rows.append(
                {
                    "voxel_um": "x".join(f"{s:g}" for s in sp),
                    "gap_um": gap,
                    "measured_um": d,
                    "err_vox": (d - gap) / max(sp),
                    "peer_edt_um": max(d_peer, 0.0),
                    "time_s": t_ours,
                    "peer_time_s": t_peer,
                }
            )
    return pd.DataFrame(rows)


def part_chromatin(seeds) -> pd.DataFrame:
    from sxtflow.quantify import split_chromatin
    from sxtflow.sim import simulate_cell

    rows = []
    for seed in seeds:
        hf = [0.15, 0.3, 0.45][seed % 3]
        lac, lab = simulate_cell(
            "lymphocyte",
            (96, 128, 128),
            80.0,
            seed=seed,
            condition={"heterochromatin_fraction": hf},
        )
        nucleus = np.isin(lab.data, [4, 5, 6])
        truth = lab.meta["truth"]["heterochromatin_fraction"]
        rng = np.random.default_rng(seed)
        for noise in (0.0, 0.03):
            data = lac.data + rng.normal(0, noise, lac.data.shape).astype(np.float32)
            for method in ("gmm", "otsu"):
                t = time.perf_counter()
                _, table = split_chromatin(data, nucleus, lac.spacing_um, method=method)
                rows.append(
                    {
                        "seed": seed,
                        "input": f"truth LAC + N(0, {noise})",
                        "method": method,
                        "truth_fraction": truth,
                        "measured": table["heterochromatin_fraction"].iloc[0],
                        "abs_err": abs(table["heterochromatin_fraction"].iloc[0] - truth),
                        "compaction": table["compaction_ratio"].iloc[0],
                        "time_s": time.perf_counter() - t,
                    }
                )
    # one reconstruction: the truth nucleus mask on an FBP tomogram
    from sxtflow.recon import reconstruct
    from sxtflow.sim import project, tilt_angles

    seed = seeds[0]
    lac, lab = simulate_cell("lymphocyte", (96, 128, 128), 80.0, seed=seed)
    proj = project(lac, tilt_angles(181), photons=2000, seed=seed)
    rec = reconstruct(proj, center=float(128 // 2))
    nucleus = np.isin(lab.data, [4, 5, 6])
    truth = lab.meta["truth"]["heterochromatin_fraction"]
    for method in ("gmm", "otsu"):
        for sigma in (None, 0.12):
            _, table = split_chromatin(
                rec.data, nucleus, lac.spacing_um, method=method, smooth_sigma_um=sigma
            )
            m = table["heterochromatin_fraction"].iloc[0]
            rows.append(
                {
                    "seed": seed,
                    "input": f"FBP 181 angles 2000 ph, sigma {sigma or 0.06} um",
                    "method": method,
                    "truth_fraction": truth,
                    "measured": m,
                    "abs_err": abs(m - truth),
                    "compaction": table["compaction_ratio"].iloc[0],
                    "time_s": np.nan,
                }
            )
    return pd.DataFrame(rows)


def part_protrusions(seeds) -> pd.DataFrame:
    from sxtflow.quantify import protrusions
    from sxtflow.sim import simulate_cell

    rows = []
    for seed in seeds:
        _, lab = simulate_cell("lymphocyte", (128, 160, 160), 60.0, seed=seed)
        cell = ndimage.binary_fill_holes(lab.data > 1)
        scale = lab.meta["truth"]["scale"]
        t = time.perf_counter()
        table, _ = protrusions(cell, lab.spacing_um, body_radius_um=0.5 * scale)
        dt = time.perf_counter() - t
        dirs = table[["direction_z", "direction_y", "direction_x"]].to_numpy()
        for truth in lab.meta["truth"]["protrusions"]:
            cos = dirs @ np.asarray(truth["direction"]) if len(dirs) else np.zeros(0)
            j = int(np.argmax(cos)) if len(cos) else -1
            hit = j >= 0 and cos[j] > 0.9
            r = table.iloc[j] if hit else None
            rows.append(
                {
                    "seed": seed,
                    "truth_type": truth["type"],
                    "found": hit,
                    "type": r["type"] if hit else "",
                    "truth_length_um": truth["length_um"],
                    "length_um": r["length_um"] if hit else np.nan,
                    "truth_thickness_um": truth["thickness_um"],
                    "thickness_um": r["thickness_um"] if hit else np.nan,
                    "extra_pieces": len(table) - len(lab.meta["truth"]["protrusions"]),
                    "time_s": dt,
                }
            )
    return pd.DataFrame(rows)


def big_cell(n: int, seed: int = 0):
    """A synthetic n³ cell: ellipsoidal cytoplasm, a nucleus and ~48 small organelles."""
    rng = np.random.default_rng(seed)
    shape = (n, n, n)
    lab = np.ones(shape, np.uint8)
    c = np.array(shape) / 2
    lab[ellipsoid(shape, c, 0.45 * np.array(shape) * [0.85, 1, 1])] = 2
    nuc_c = c + [0, 0.08 * n, 0]
    nuc = ellipsoid(shape, nuc_c, 0.18 * np.array(shape))
    lab[nuc] = 4
    placed = 0
    tries = 0
    while placed < 48 and tries < 5000:
        tries += 1
        r = rng.uniform(0.012, 0.03) * n
        p = c + rng.uniform(-0.38, 0.38, 3) * n
        sl = tuple(slice(int(x - r - 2), int(x + r + 3)) for x in p)
        if any(s.start < 0 or s.stop > n for s in sl):
            continue
        box = lab[sl]
        g = np.ogrid[tuple(slice(s.start, s.stop) for s in sl)]
        ball = sum((x - q) ** 2 for x, q in zip(g, p, strict=True)) <= (r + 2) ** 2
        if not (box[ball] == 2).all():
            continue
        inner = sum((x - q) ** 2 for x, q in zip(g, p, strict=True)) <= r**2
        box[inner] = 7 if placed % 3 == 0 else 8
        placed += 1
    lac = np.select(
        [lab == 1, lab == 2, lab == 4, lab == 7, lab == 8], [0.11, 0.22, 0.27, 0.14, 0.75]
    ).astype(np.float32)
    lac += np.random.default_rng(seed + 1).normal(0, 0.01, shape).astype(np.float32)
    return lab, lac


def part_big(n: int) -> dict:
    """Run in a child process: measure + relations + meshes of an n³ cell."""
    from sxtflow.quantify import class_meshes, object_relations, write_scene
    from sxtflow.quantify._measure import _cell_mask

    t0 = time.perf_counter()
    lab, lac = big_cell(n)
    t_build = time.perf_counter() - t0
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    vox = (30.0, 30.0, 30.0)
    t = time.perf_counter()
    objects = measure_objects(Volume(lab, vox), Volume(lac, vox), CLASSES)
    t_measure = time.perf_counter() - t
    t = time.perf_counter()
    organelles = {k: v for k, v in CLASSES.items() if k != "ice"}
    inst, table = instances(lab, organelles)
    cell = _cell_mask(lab, list(organelles.values()))
    areas = dict(zip(objects["object_id"], objects["surface_um2"], strict=True))
    rel = object_relations(
        inst,
        table,
        (0.03, 0.03, 0.03),
        cell,
        targets=["nucleus", "vacuole", "lipid_droplet"],
        surface_um2=areas,
    )
    t_rel = time.perf_counter() - t
    del inst, cell
    t = time.perf_counter()
    meshes = class_meshes(Volume(lab, vox), CLASSES)
    write_scene(
        "/tmp/issue5/big_scene.glb",
        meshes,
        {
            "cytoplasm": "#c8c8c8",
            "nucleus": "#4f7cff",
            "vacuole": "#3fc8e0",
            "lipid_droplet": "#ffb000",
        },
    )
    t_mesh = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "shape": f"{n}^3",
        "objects": int((objects["class"] != "cell").sum()),
        "relation_rows": len(rel),
        "build_s": round(t_build, 1),
        "measure_s": round(t_measure, 1),
        "relations_s": round(t_rel, 1),
        "class_meshes_glb_s": round(t_mesh, 1),
        "input_MB": round((lab.nbytes + lac.nbytes) / 2**20),
        "peak_rss_after_build_MB": round(rss_build),
        "peak_rss_MB": round(rss),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--big-only", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.big_only:
        print(json.dumps(part_big(args.big_only)))
        return
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    fmt = {"float_format": lambda x: f"{x:.4g}"}
    print("## 1. analytic shapes (measure_objects vs skimage regionprops volume)")
    print(part_shapes().to_string(index=False, **fmt))
    print("\n## 2. surface-to-surface distance of two balls (relations vs full-volume EDT)")
    d = part_distances()
    print(d.to_string(index=False, **fmt))
    print(
        f"max |err| = {d['err_vox'].abs().max():.2f} voxel; time ratio peer/ours (median) = "
        f"{(d['peer_time_s'] / d['time_s']).median():.2f}"
    )
    seeds = [1, 2, 3] if args.quick else [1, 2, 3, 4, 5, 6]
    print("\n## 3. chromatin (heterochromatin fraction of the nuclear volume)")
    c = part_chromatin(seeds)
    print(c.to_string(index=False, **fmt))
    print(c.groupby(["input", "method"])["abs_err"].max().rename("max_abs_err").to_string())
    print("\n## 4. protrusions on simulated lymphocytes (truth cell masks, 60 nm voxels)")
    p = part_protrusions(seeds if args.quick else list(range(1, 11)))
    print(p.to_string(index=False, **fmt))
    found = p[p["found"]]
    rel = (found["length_um"] - found["truth_length_um"]).abs() / found["truth_length_um"]
    print(
        f"found {len(found)}/{len(p)} ({100 * len(found) / len(p):.0f} %); type right "
        f"{(found['type'] == found['truth_type']).mean() * 100:.0f} %; length within 10 %: "
        f"{(rel <= 0.1).mean() * 100:.0f} %; median |length err| {100 * rel.median():.1f} %; "
        f"max {100 * rel.max():.1f} %; extra pieces per cell "
        f"{p.groupby('seed')['extra_pieces'].first().to_list()}"
    )
    n = 256 if args.quick else 512
    print(f"\n## 5. a {n}³ cell with ~50 objects: measure + relations + meshes (child process)")
    out = subprocess.run(
        [sys.executable, __file__, "--big-only", str(n)], capture_output=True, text=True, check=True
    )
    print(pd.DataFrame([json.loads(out.stdout.strip().splitlines()[-1])]).to_string(index=False))


if __name__ == "__main__":
    main()
