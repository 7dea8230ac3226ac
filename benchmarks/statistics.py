"""Benchmark and sizing of sxtflow.stats.test_conditions.

1. Speed: sxtflow's test_conditions (exact Mann–Whitney, BH per family, bootstrap CI,
   Cliff's delta) against the bare peer (scipy.stats.mannwhitneyu with its default method
   plus scipy.stats.false_discovery_control) on the same per-cell tables, with
   the bootstrap off (n_boot=0) so both compute p- and q-values only, and with the
   default n_boot=2000. Prints the time ratio.
2. Demo sizing: the smallest exact two-sided Mann–Whitney p-value, 2 / C(2n, n), for n
   cells per condition, and the BH q-value it gives when r of the K primary measures are
   perfectly separated (q = p K / r), i.e. how many cells per condition the simulated
   lipid difference needs to reach FDR < 0.05.

Run: ``python benchmarks/statistics.py`` (a few seconds).
"""

from __future__ import annotations

import time
from math import comb

import numpy as np
import pandas as pd
from scipy import stats

from sxtflow import stats as sx


def table(n_cells: int, n_measures: int, seed: int = 0) -> pd.DataFrame:
    """Per-cell table: two conditions, half continuous measures, half integer counts."""
    rng = np.random.default_rng(seed)
    frames = []
    for cond in ("control", "treated"):
        data = {
            (f"m{j}_count" if j % 2 else f"m{j}_um3"): (
                rng.poisson(4, n_cells) if j % 2 else rng.normal(1, 0.3, n_cells)
            )
            for j in range(n_measures)
        }
        frame = pd.DataFrame(data)
        frame.insert(0, "condition", cond)
        frame.insert(0, "sample", [f"{cond}{i}" for i in range(n_cells)])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def peer(cells: pd.DataFrame) -> np.ndarray:
    """scipy only: Mann–Whitney (default method) per measure, then BH over all."""
    x = cells[cells["condition"] == "treated"]
    y = cells[cells["condition"] == "control"]
    cols = [c for c in cells.columns if c not in ("sample", "condition")]
    p = [stats.mannwhitneyu(x[c], y[c], alternative="two-sided").pvalue for c in cols]
    return stats.false_discovery_control(p, method="bh")


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    print("speed: sxtflow.stats.test_conditions vs scipy (mannwhitneyu + BH)")
    print(f"{'cells/cond':>10} {'measures':>8} {'n_boot':>6} {'sxtflow s':>10} {'scipy s':>8} "
          f"{'ratio':>6} {'max |dp| (no ties)':>18}")  # fmt: skip
    for n_cells, n_measures in ((3, 36), (6, 36), (20, 36), (100, 36)):
        cells = table(n_cells, n_measures)
        for n_boot in (0, 2000):
            t_sxt = best_of(
                lambda c=cells, b=n_boot: sx.test_conditions(c, reference="control", n_boot=b)
            )
            t_peer = best_of(lambda c=cells: peer(c))
            res = sx.test_conditions(cells, reference="control", n_boot=0)
            cols = [c for c in cells.columns if c.endswith("_um3")]
            x = cells[cells["condition"] == "treated"]
            y = cells[cells["condition"] == "control"]
            ref = [stats.mannwhitneyu(x[c], y[c]).pvalue for c in cols]
            got = res.set_index("measure").loc[cols, "p_value"].to_numpy()
            dp = float(np.nanmax(np.abs(got - np.asarray(ref))))
            print(f"{n_cells:>10} {n_measures:>8} {n_boot:>6} {t_sxt:>10.3f} {t_peer:>8.3f} "
                  f"{t_sxt / t_peer:>6.1f} {dp:>18.2e}")  # fmt: skip

    print()
    print("demo sizing: smallest exact Mann-Whitney p (perfect separation) and its BH q")
    print("K = primary measures, r = of them perfectly separated; * = q < 0.05")
    header = "".join(f"{f'K={k},r={r}':>10}" for k in (6, 36) for r in (1, 2))
    print(f"{'n/cond':>6} {'p_min':>9} {'p(1 swap)':>9}{header}")
    for n in range(3, 9):
        p_min = 2 / comb(2 * n, n)
        p_swap = 4 / comb(2 * n, n)  # one reference cell above one condition cell
        cells = "".join(
            f"{min(1, p_min * k / r):>9.3f}{'*' if p_min * k / r < 0.05 else ' '}"
            for k in (6, 36)
            for r in (1, 2)
        )
        print(f"{n:>6} {p_min:>9.2e} {p_swap:>9.2e}{cells}")


if __name__ == "__main__":
    main()
