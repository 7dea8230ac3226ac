"""Tests of sxtflow.stats and sxtflow.plot (compare stage): tables, per-cell aggregation, statistics and plots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sxtflow import plot
from sxtflow import stats as sx

# --------------------------------------------------------------------------- helpers


def _sheet():
    return pd.DataFrame(
        {"sample": ["c1", "c2", "l1"], "condition": ["control", "control", "lipid_rich"]}
    )


def _objects():
    """Hand-made per-object tables of three cells."""
    return {
        "c1": pd.DataFrame(
            {
                "class": ["lipid_droplet", "lipid_droplet", "lipid_droplet", "vacuole"],
                "object_id": [1, 2, 3, 4],
                "volume_um3": [0.1, 0.3, 0.2, 2.0],
                "sphericity": [0.9, 0.8, 0.7, 0.5],
            }
        ),
        "c2": pd.DataFrame(
            {
                "class": ["lipid_droplet", "lipid_droplet"],
                "object_id": [1, 2],
                "volume_um3": [0.4, 0.6],
                "sphericity": [1.0, 0.6],
            }
        ),
        "l1": pd.DataFrame(
            {
                "class": ["vacuole", "lipid_droplet", "vacuole"],
                "object_id": [1, 2, 3],
                "volume_um3": [1.0, 0.5, 3.0],
                "sphericity": [0.4, 0.95, 0.6],
            }
        ),
    }


def _cells(shifts: dict[str, dict[str, float]], n: int, n_measures: int, seed: int):
    """Simulated per-cell table: normal(shift, 1) for each measure and condition."""
    rng = np.random.default_rng(seed)
    frames = []
    for cond, by_measure in shifts.items():
        data = {
            f"m{j}_um3": rng.normal(by_measure.get(f"m{j}_um3", 0.0), 1.0, n)
            for j in range(n_measures)
        }
        frame = pd.DataFrame(data)
        frame.insert(0, "condition", cond)
        frame.insert(0, "sample", [f"{cond}_{i}" for i in range(n)])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- tables


def test_stack_tables_adds_sample_and_condition_first():
    stacked = sx.stack_tables(_objects(), _sheet())
    assert list(stacked.columns[:2]) == ["sample", "condition"]
    assert len(stacked) == 9
    assert stacked["sample"].tolist() == ["c1"] * 4 + ["c2"] * 2 + ["l1"] * 3
    assert stacked.loc[stacked["sample"] == "l1", "condition"].eq("lipid_rich").all()
    assert stacked.loc[stacked["sample"] == "c2", "condition"].eq("control").all()


def test_stack_tables_unknown_sample_raises():
    tables = _objects()
    tables["ghost"] = tables["c1"]
    with pytest.raises(ValueError, match="ghost"):
        sx.stack_tables(tables, _sheet())


def test_stack_tables_bad_sheet_raises():
    with pytest.raises(ValueError, match="condition"):
        sx.stack_tables(_objects(), _sheet().drop(columns="condition"))
    dup = pd.concat([_sheet(), _sheet().iloc[:1]], ignore_index=True)
    with pytest.raises(ValueError, match="more than once"):
        sx.stack_tables(_objects(), dup)


def test_per_cell_medians_and_counts_by_hand():
    stacked = sx.stack_tables(_objects(), _sheet())
    cells = sx.per_cell(stacked, measures=("volume_um3", "sphericity"))
    assert cells["sample"].tolist() == ["c1", "c2", "l1"]
    assert cells["condition"].tolist() == ["control", "control", "lipid_rich"]
    assert list(cells.columns) == [
        "sample",
        "condition",
        "lipid_droplet_count",
        "lipid_droplet_volume_um3_median",
        "lipid_droplet_sphericity_median",
        "vacuole_count",
        "vacuole_volume_um3_median",
        "vacuole_sphericity_median",
    ]
    c = cells.set_index("sample")
    assert c["lipid_droplet_count"].tolist() == [3, 2, 1]
    assert c["vacuole_count"].tolist() == [1, 0, 2]
    # c1 droplets 0.1, 0.3, 0.2 -> 0.2; c2 0.4, 0.6 -> 0.5; l1 0.5
    np.testing.assert_allclose(c["lipid_droplet_volume_um3_median"], [0.2, 0.5, 0.5])
    np.testing.assert_allclose(c["lipid_droplet_sphericity_median"], [0.8, 0.8, 0.95])
    # c2 has no vacuole -> NaN median, count 0; l1 vacuoles 1.0, 3.0 -> 2.0
    np.testing.assert_allclose(c["vacuole_volume_um3_median"], [2.0, np.nan, 2.0])
    np.testing.assert_allclose(c["vacuole_sphericity_median"], [0.5, np.nan, 0.5])


def test_per_cell_with_sheet_keeps_cells_without_objects():
    sheet = pd.concat(
        [_sheet(), pd.DataFrame({"sample": ["l2"], "condition": ["lipid_rich"]})],
        ignore_index=True,
    )
    stacked = sx.stack_tables(_objects(), _sheet())
    cells = sx.per_cell(
        stacked, measures=["volume_um3"], classes=["lipid_droplet", "mitochondrion"], samples=sheet
    )
    c = cells.set_index("sample")
    assert list(c.index) == ["c1", "c2", "l1", "l2"]
    assert c.loc["l2", "condition"] == "lipid_rich"
    assert c.loc["l2", "lipid_droplet_count"] == 0
    assert np.isnan(c.loc["l2", "lipid_droplet_volume_um3_median"])
    assert c["mitochondrion_count"].tolist() == [0, 0, 0, 0]
    assert "vacuole_count" not in cells.columns


def test_per_cell_missing_measure_raises():
    stacked = sx.stack_tables(_objects(), _sheet())
    with pytest.raises(ValueError, match="lac_mean_per_um"):
        sx.per_cell(stacked)  # default measures include lac_mean_per_um


def test_summarise_by_hand():
    cells = pd.DataFrame(
        {
            "sample": list("abcdefg"),
            "condition": ["ctl"] * 4 + ["lip"] * 3,
            "x_um3": [1.0, 2.0, 3.0, 4.0, 10.0, 20.0, np.nan],
        }
    )
    s = sx.summarise(cells)
    assert list(s.columns) == [
        "measure",
        "condition",
        "n_cells",
        "mean",
        "sd",
        "median",
        "q25",
        "q75",
    ]
    ctl = s[s["condition"] == "ctl"].iloc[0]
    assert ctl["measure"] == "x_um3" and ctl["n_cells"] == 4
    assert ctl["mean"] == pytest.approx(2.5)
    assert ctl["sd"] == pytest.approx(np.sqrt(5.0 / 3.0))  # squares 2.25+0.25+0.25+2.25 over 3
    assert ctl["median"] == pytest.approx(2.5)
    assert ctl["q25"] == pytest.approx(1.75)
    assert ctl["q75"] == pytest.approx(3.25)
    lip = s[s["condition"] == "lip"].iloc[0]
    assert lip["n_cells"] == 2  # NaN not counted
    assert lip["mean"] == pytest.approx(15.0)
    assert lip["sd"] == pytest.approx(np.sqrt(50.0))
    assert lip["q25"] == pytest.approx(12.5)


def test_per_object_table_is_refused():
    stacked = sx.stack_tables(_objects(), _sheet())
    with pytest.raises(ValueError, match="one row per cell"):
        sx.test_conditions(stacked, reference="control", measures=["volume_um3"])


# --------------------------------------------------------------------------- statistics


def test_large_shift_is_significant():
    cells = _cells({"control": {}, "lipid_rich": {"m0_um3": 3.0}}, n=8, n_measures=5, seed=3)
    res = sx.test_conditions(cells, reference="control", n_boot=500)
    assert list(res.columns[:14]) == [
        "measure",
        "condition",
        "reference",
        "n",
        "n_reference",
        "test",
        "statistic",
        "p_value",
        "q_value",
        "median_difference",
        "ci_low",
        "ci_high",
        "cliffs_delta",
        "significant",
    ]
    assert len(res) == 5 and set(res["test"]) == {"mann-whitney-u"}
    hit = res.set_index("measure").loc["m0_um3"]
    assert hit["significant"] and hit["q_value"] < 0.05
    assert hit["median_difference"] > 1.5 and hit["cliffs_delta"] > 0.7
    assert hit["n"] == 8 and hit["n_reference"] == 8
    # numbers match scipy directly
    x = cells.loc[cells["condition"] == "lipid_rich", "m0_um3"].to_numpy()
    y = cells.loc[cells["condition"] == "control", "m0_um3"].to_numpy()
    ref = stats.mannwhitneyu(x, y, alternative="two-sided")
    assert hit["statistic"] == pytest.approx(ref.statistic)
    assert hit["p_value"] == pytest.approx(ref.pvalue)
    brute = np.mean(np.sign(x[:, None] - y[None, :]))
    assert hit["cliffs_delta"] == pytest.approx(brute)
    np.testing.assert_allclose(
        res["q_value"], stats.false_discovery_control(res["p_value"], method="bh")
    )


def test_null_tables_false_discovery_rate():
    rates, p_values = [], []
    for seed in range(20):
        cells = _cells({"control": {}, "treated": {}}, n=6, n_measures=10, seed=100 + seed)
        res = sx.test_conditions(cells, reference="treated", n_boot=0)
        assert len(res) == 10
        rates.append(float(np.mean(res["q_value"] < 0.05)))
        p_values.extend(res["p_value"])
    assert np.mean(rates) <= 0.1
    # the raw p-values are calibrated (about 5 % below 0.05), not merely conservative
    assert 0.01 <= np.mean(np.asarray(p_values) < 0.05) <= 0.1


def test_dunn_posthoc_three_groups_finds_shifted_group():
    cells = _cells(
        {"control": {}, "similar": {}, "shifted": {"m0_um3": 3.0}}, n=8, n_measures=3, seed=7
    )
    res = sx.test_conditions(cells, reference="control", n_boot=200)
    assert len(res) == 6
    assert set(res["test"]) == {"dunn-holm"} and set(res["omnibus_test"]) == {"kruskal-wallis"}
    r = res.set_index(["measure", "condition"])
    assert r.loc[("m0_um3", "shifted"), "significant"]
    assert r.loc[("m0_um3", "shifted"), "statistic"] > 0
    assert r.loc[("m0_um3", "shifted"), "omnibus_q"] < 0.05
    assert not r.loc[("m0_um3", "similar"), "significant"]
    # the Kruskal-Wallis omnibus statistic matches scipy
    groups = [
        cells.loc[cells["condition"] == c, "m0_um3"] for c in ("control", "similar", "shifted")
    ]
    assert r.loc[("m0_um3", "shifted"), "omnibus_statistic"] == pytest.approx(
        stats.kruskal(*groups).statistic
    )


def test_dunn_two_groups_equals_kruskal_with_ties():
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 5.0])
    y = np.array([2.0, 4.0, 5.0, 6.0, 7.0, 7.0, 8.0])
    z, p = sx.dunn_test([x, y])
    kw = stats.kruskal(x, y)
    assert z[0, 1] ** 2 == pytest.approx(kw.statistic)
    assert p[0, 1] == pytest.approx(kw.pvalue)
    assert z[0, 1] == pytest.approx(-z[1, 0]) and z[0, 1] < 0
    assert p[0, 0] == 1.0


def test_dunn_matches_scikit_posthocs_when_installed():
    sp = pytest.importorskip("scikit_posthocs")
    rng = np.random.default_rng(0)
    groups = [np.round(rng.normal(s, 1, 7), 1) for s in (0, 0.5, 2)]
    _, p = sx.dunn_test(groups)
    np.testing.assert_allclose(p, sp.posthoc_dunn(groups, p_adjust=None).to_numpy(), rtol=1e-10)


def test_holm_by_hand():
    adj = sx.holm([0.01, 0.04, np.nan, 0.03])
    # sorted 0.01, 0.03, 0.04 with m = 3: 0.03, 0.06, max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(adj, [0.03, 0.06, np.nan, 0.06])


def test_bootstrap_ci_contains_true_difference():
    rng = np.random.default_rng(11)
    covered = []
    for rep in range(40):
        cells = pd.DataFrame(
            {
                "sample": [f"s{i}" for i in range(60)],
                "condition": ["a"] * 30 + ["b"] * 30,
                "x_um": np.r_[rng.normal(0, 1, 30), rng.normal(2.0, 1, 30)],
            }
        )
        row = sx.test_conditions(cells, reference="a", n_boot=1000, seed=rep).iloc[0]
        assert row["ci_low"] <= row["median_difference"] <= row["ci_high"]
        covered.append(row["ci_low"] <= 2.0 <= row["ci_high"])
    assert np.mean(covered) >= 0.8


def test_deterministic_under_seed():
    cells = _cells({"control": {}, "lipid_rich": {"m1_um3": 1.0}}, n=6, n_measures=3, seed=5)
    a = sx.test_conditions(cells, reference="control", seed=1)
    b = sx.test_conditions(cells, reference="control", seed=1)
    pd.testing.assert_frame_equal(a, b)
    c = sx.test_conditions(cells, reference="control", seed=2)
    assert not np.allclose(a["ci_low"], c["ci_low"])
    # the CI of a measure does not depend on which other measures are tested
    d = sx.test_conditions(cells, reference="control", seed=1, measures=["m1_um3"])
    assert d["ci_low"].iloc[0] == a.set_index("measure").loc["m1_um3", "ci_low"]


def test_constant_and_too_small_measures_kept_with_nan_p():
    cells = _cells({"control": {}, "lipid_rich": {"m0_um3": 3.0}}, n=6, n_measures=1, seed=2)
    cells["const_count"] = 4
    cells["sparse_fraction"] = np.nan
    cells.loc[cells.index[[0, 1, 6]], "sparse_fraction"] = [0.1, 0.2, 0.3]
    res = sx.test_conditions(cells, reference="control").set_index("measure")
    assert list(res.index) == ["m0_um3", "const_count", "sparse_fraction"]
    assert np.isnan(res.loc["const_count", "p_value"])
    assert np.isnan(res.loc["const_count", "q_value"])
    assert not res.loc["const_count", "significant"]
    assert "constant" in res.loc["const_count", "note"]
    assert res.loc["const_count", "median_difference"] == 0
    assert np.isnan(res.loc["sparse_fraction", "p_value"])
    assert res.loc["sparse_fraction", "n"] == 1 and res.loc["sparse_fraction", "n_reference"] == 2
    assert "fewer than 2" in res.loc["sparse_fraction", "note"]
    # the NaN rows do not count in the BH family
    assert res.loc["m0_um3", "q_value"] == pytest.approx(res.loc["m0_um3", "p_value"])


def test_bad_reference_raises():
    cells = _cells({"control": {}, "lipid_rich": {}}, n=4, n_measures=1, seed=0)
    with pytest.raises(ValueError, match="reference"):
        sx.test_conditions(cells, reference="nope")


def _demo_like(n: int, seed: int, n_null: int = 20) -> pd.DataFrame:
    """Per-cell table like the demo's: the lipid condition changes only the lipid measures.

    Primary: cell volume, nucleus/vacuole/mitochondrion/lipid fractions, lipid droplet
    count. The simulated lipid_rich cells have 8 droplets instead of 3 (segmentation
    finds each with probability 0.85) and ~4x the lipid volume fraction; everything else
    is drawn from the same distribution in both conditions, including ``n_null``
    exploratory measures (half integer counts, which tie, half continuous).
    """
    rng = np.random.default_rng(seed)
    frames = []
    for cond, n_lip, lip_fraction in (("control", 3, 0.0075), ("lipid_rich", 8, 0.033)):
        data = {
            "cell_volume_um3": rng.normal(34.0, 2.5, n),
            "nucleus_fraction": rng.normal(0.06, 0.02, n),
            "vacuole_fraction": rng.normal(0.03, 0.01, n),
            "mitochondrion_fraction": rng.normal(0.009, 0.001, n),
            "lipid_droplet_fraction": rng.normal(lip_fraction, 0.25 * lip_fraction, n),
            "lipid_droplet_count": rng.binomial(n_lip, 0.85, n),
        }
        for j in range(n_null):
            data[f"null{j}_count" if j % 2 else f"null{j}_um3"] = (
                rng.poisson(4, n) if j % 2 else rng.normal(1.0, 0.3, n)
            )
        frame = pd.DataFrame(data)
        frame.insert(0, "condition", cond)
        frame.insert(0, "sample", [f"{cond}_{i}" for i in range(n)])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


_TRUE = {"lipid_droplet_fraction", "lipid_droplet_count"}
# the default primary measures of _demo_like's columns (plan.default_measures)
_PRIMARY = [
    "cell_volume_um3",
    "nucleus_fraction",
    "vacuole_fraction",
    "mitochondrion_fraction",
    "lipid_droplet_fraction",
    "lipid_droplet_count",
]


def test_primary_measures_default_and_requested():
    cells = _demo_like(3, 0, n_null=2)
    assert sx.primary_measures(cells) == _PRIMARY
    assert sx.primary_measures(cells.drop(columns="vacuole_fraction")) == [
        m for m in _PRIMARY if m != "vacuole_fraction"
    ]
    assert sx.primary_measures(cells, ["null0_um3", "null0_um3"]) == ["null0_um3"]
    with pytest.raises(ValueError, match="golgi_fraction"):
        sx.primary_measures(cells, ["golgi_fraction"])
    with pytest.raises(ValueError, match="empty"):
        sx.primary_measures(cells, [])


def test_primary_and_exploratory_are_separate_bh_families():
    cells = _demo_like(6, 1)
    res = sx.test_conditions(
        cells, reference="control", primary=sx.primary_measures(cells), n_boot=0
    )
    k = len(_PRIMARY)
    assert res["measure"].tolist()[:k] == _PRIMARY
    assert set(res["family"].iloc[:k]) == {"primary"}
    assert set(res["family"].iloc[k:]) == {"exploratory"} and len(res) == k + 20
    for _, sub in res.groupby("family"):
        np.testing.assert_allclose(
            sub["q_value"], stats.false_discovery_control(sub["p_value"], method="bh")
        )
    # one family over everything (no primary given) gives larger q for the primary hits
    flat = sx.test_conditions(cells, reference="control", n_boot=0).set_index("measure")
    assert set(flat["family"]) == {"all"}
    by = res.set_index("measure")
    for m in _TRUE:
        assert by.loc[m, "q_value"] < flat.loc[m, "q_value"]
    # the counts tie, so their p-value is the exact permutation one
    assert by.loc["lipid_droplet_count", "p_method"] == "permutation"
    assert by.loc["cell_volume_um3", "p_method"] == "exact"


def test_mann_whitney_exact_with_ties_by_enumeration():
    from itertools import combinations

    x = np.array([7.0, 6.0, 7.0, 3.0])
    y = np.array([2.0, 3.0, 3.0, 6.0])
    u, p, how = sx.mann_whitney(x, y)
    assert how == "permutation"
    pooled = np.r_[x, y]
    ranks = stats.rankdata(pooled)
    n, mean_u = x.size, x.size * y.size / 2

    def u_of(idx):
        return ranks[list(idx)].sum() - n * (n + 1) / 2

    observed = abs(u_of(range(n)) - mean_u)
    all_u = [abs(u_of(idx) - mean_u) for idx in combinations(range(pooled.size), n)]
    assert u == pytest.approx(u_of(range(n)))
    assert p == pytest.approx(np.mean(np.array(all_u) >= observed - 1e-9))
    # 3 + 3 cells perfectly separated: the smallest possible p is 2 / C(6, 3) = 0.1,
    # which the normal approximation (p = 0.072 with these ties) would undercut
    assert sx.mann_whitney([7, 6, 7], [2, 3, 3])[1] == pytest.approx(0.1)
    assert stats.mannwhitneyu([7, 6, 7], [2, 3, 3]).pvalue < 0.1


def test_unchanged_measures_flagged_at_most_nominal_rate_over_20_seeds():
    """Measures the simulation did not change: flagged (q < 0.05) at most 5 % of the time."""
    flagged, raw, found = [], [], []
    for seed in range(20):
        cells = _demo_like(6, 1000 + seed, n_null=12)
        res = sx.test_conditions(
            cells, reference="control", primary=sx.primary_measures(cells), n_boot=0
        )
        null = res[~res["measure"].isin(_TRUE)]
        flagged.extend(null["significant"])
        raw.extend(null["p_value"] < 0.05)
        found.append(res.loc[res["measure"].isin(_TRUE), "significant"].all())
    flagged, raw = np.asarray(flagged), np.asarray(raw)
    assert flagged.size == 20 * 16
    assert flagged.mean() <= 0.05
    # unadjusted, the null measures are calibrated too: the exact tests are valid
    assert raw.mean() <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / raw.size)
    # and the two true differences are found in (nearly) every simulated study
    assert np.mean(found) >= 0.95


def test_lipid_difference_needs_five_cells_per_condition():
    """Demo sizing: perfect separation of the two lipid measures in a family of six."""

    def study(n):
        cells = _demo_like(n, 0, n_null=0)
        # make the lipid measures perfectly separated, as in the demo's three cells
        lip = cells["condition"] == "lipid_rich"
        cells.loc[lip, "lipid_droplet_count"] = 7 + np.arange(lip.sum()) % 2
        cells.loc[~lip, "lipid_droplet_count"] = 2 + np.arange((~lip).sum()) % 2
        cells.loc[lip, "lipid_droplet_fraction"] = 0.03 + 0.001 * np.arange(lip.sum())
        cells.loc[~lip, "lipid_droplet_fraction"] = 0.005 + 0.001 * np.arange((~lip).sum())
        res = sx.test_conditions(
            cells, reference="control", primary=sx.primary_measures(cells), n_boot=0
        )
        return res.set_index("measure")

    for n in (3, 4):
        r = study(n)
        assert not r.loc[list(_TRUE), "significant"].any()
    r = study(5)
    assert r.loc[list(_TRUE), "significant"].all()
    assert r.loc["lipid_droplet_fraction", "p_value"] == pytest.approx(2 / 252)


# --------------------------------------------------------------------------- plots


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("cell_volume_um3", "µm³"),
        ("lipid_droplet_volume_um3_median", "µm³"),
        ("vacuole_surface_um2", "µm²"),
        ("mitochondrion_lac_mean_per_um", "µm⁻¹"),
        ("nucleus_fraction", "fraction"),
        ("lipid_droplet_count", "count"),
        ("lipid_droplet_sphericity_median", ""),
    ],
)
def test_measure_unit(name, unit):
    assert sx.measure_unit(name) == unit


def test_plots_written(tmp_path):
    cells = _cells({"control": {}, "lipid_rich": {"m0_um3": 2.0}}, n=5, n_measures=2, seed=1)
    cells["lipid_droplet_fraction"] = np.linspace(0.01, 0.1, len(cells))
    cells["nucleus_fraction"] = 0.2
    cells["lipid_droplet_count"] = np.arange(len(cells))
    cells.loc[0, "m1_um3"] = np.nan
    png, svg = plot.plot_measures(
        cells,
        ["m0_um3", "m1_um3", "nucleus_fraction", "lipid_droplet_count"],
        tmp_path / "plots" / "measures.png",
        reference="lipid_rich",
    )
    assert png == tmp_path / "plots" / "measures.png" and svg == png.with_suffix(".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:2000]
    assert "µm³" in svg.read_text(encoding="utf-8")  # text kept editable, unit in y label
    tests = sx.test_conditions(cells, reference="lipid_rich", n_boot=0)
    _, svg_q = plot.plot_measures(
        cells, ["m0_um3", "m1_um3"], tmp_path / "q.png", reference="lipid_rich", tests=tests
    )
    q0 = tests.set_index("measure").loc["m0_um3", "q_value"]
    assert f"q={q0:.2g}" in svg_q.read_text(encoding="utf-8")
    png2, svg2 = plot.plot_fractions(
        cells, ["nucleus", "lipid_droplet_fraction"], tmp_path / "fractions.png"
    )
    assert png2.stat().st_size > 1000 and svg2.stat().st_size > 1000
    assert not list(tmp_path.rglob("*.tmp*"))  # no temporary files left behind
    with pytest.raises(ValueError, match="vacuole_fraction"):
        plot.plot_fractions(cells, ["vacuole"], tmp_path / "bad.png")


def _svg_text(path) -> str:
    return path.read_text(encoding="utf-8")


def test_plot_lac_histograms_per_object_and_per_cell(tmp_path):
    rng = np.random.default_rng(4)
    rows = []
    for cond, shift in (("control", 0.0), ("lipid_rich", 0.01)):
        for i in range(3):
            for cls, lac, k in (("nucleus", 0.25, 1), ("lipid_droplet", 0.6, 5)):
                for j in range(k):
                    rows.append(
                        {
                            "sample": f"{cond}{i}",
                            "condition": cond,
                            "class": cls,
                            "object_id": j,
                            "lac_mean_per_um": lac + shift + rng.normal(0, 0.005),
                        }
                    )
    objects = pd.DataFrame(rows)
    png, svg = plot.plot_lac_histograms(objects, tmp_path / "lac.png", reference="control")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = _svg_text(svg)
    for label in ("nucleus", "lipid_droplet", "µm⁻¹", "control (3 cells, 15 objects)"):
        assert label in text
    # per-cell LAC columns give the same classes, one value per cell
    cells = sx.per_cell(objects, measures=["lac_mean_per_um"])
    cells.columns = [c.removesuffix("_median") for c in cells.columns]
    _, svg2 = plot.plot_lac_histograms(cells, tmp_path / "lac_cells.png", classes=["nucleus"])
    text2 = _svg_text(svg2)
    assert "lipid_rich (3 cells, 3 objects)" in text2 and "lipid_droplet" not in text2
    with pytest.raises(ValueError, match="vacuole"):
        plot.plot_lac_histograms(objects, tmp_path / "bad.png", classes=["vacuole"])
    with pytest.raises(ValueError, match="lac_p90_per_um"):
        plot.plot_lac_histograms(objects, tmp_path / "bad.png", value="lac_p90_per_um")


def test_plot_radial_profiles(tmp_path):
    bins = np.arange(8)
    rows = [
        {
            "sample": f"{cond}{i}",
            "condition": cond,
            "bin": b,
            "heterochromatin_fraction": slope * b + 0.01 * i,
        }
        for cond, slope in (("control", 0.03), ("treated", 0.01))
        for i in range(4)
        for b in bins
    ]
    profiles = pd.DataFrame(rows)
    png, svg = plot.plot_radial_profiles(
        profiles, tmp_path / "chromatin.png", reference="treated", x_label="bin (0 = centre)"
    )
    assert png.stat().st_size > 5000
    text = _svg_text(svg)
    assert "treated (n=4 cells)" in text and "bin (0 = centre)" in text
    assert text.index("treated (n=4 cells)") < text.index("control (n=4 cells)")
    # 8 per-cell lines + 2 medians + 2 overlay medians at least
    assert text.count("<path") >= 12
    with pytest.raises(ValueError, match="more than once"):
        plot.plot_radial_profiles(pd.concat([profiles, profiles.iloc[:1]]), tmp_path / "dup.png")
    # two nuclei in one cell (chromatin.radial_profile rows carry nucleus_id): averaged
    two = profiles.assign(nucleus_id=1)
    extra = two[two["sample"] == "control0"].assign(nucleus_id=2, heterochromatin_fraction=1.0)
    _, svg2 = plot.plot_radial_profiles(pd.concat([two, extra]), tmp_path / "two.png")
    assert "nuclear envelope" in _svg_text(svg2) and "control (n=4 cells)" in _svg_text(svg2)
    with pytest.raises(ValueError, match="heterochromatin_fraction"):
        plot.plot_radial_profiles(
            profiles.drop(columns="heterochromatin_fraction"), tmp_path / "bad.png"
        )


def test_cell_table_joins_each_cells_organelle_medians_of_objects_in_the_cell():
    from sxtflow.stats import cell_table

    sheet = pd.DataFrame({"sample": ["a", "b"], "condition": ["x", "y"]})
    cells = pd.DataFrame(
        {"sample": ["a", "b"], "condition": ["x", "y"], "cell_volume_um3": [10.0, 12.0]}
    )
    objects = pd.DataFrame(
        {
            "sample": ["a", "a", "a", "b"],
            "class": ["mitochondrion"] * 4,
            "volume_um3": [1.0, 3.0, 100.0, 2.0],
            "sphericity": [0.9] * 4,
            "lac_mean_per_um": [0.5] * 4,
            "in_cell": [True, True, False, True],  # the third is a piece apart from the cell
        }
    )
    out = cell_table(cells, objects, ["mitochondrion", "vacuole"], sheet)
    assert list(out["sample"]) == ["a", "b"]
    assert list(out["mitochondrion_volume_um3_median"]) == [2.0, 2.0]
    assert out["vacuole_volume_um3_median"].isna().all()  # no vacuole: NaN, not 0
    assert not [c for c in out.columns if c.endswith("_count")]  # cells count them already


def test_reference_condition_is_the_only_one_or_must_be_named():
    from sxtflow.stats import reference_condition

    assert reference_condition(["wt"]) == "wt"
    assert reference_condition(["wt", "ko"], "wt") == "wt"
    with pytest.raises(ValueError, match="name the reference condition"):
        reference_condition(["wt", "ko"])
