"""Tests for sxtflow.quantify: known shells and simulated lymphocyte nuclei."""

import numpy as np
import pytest

from sxtflow.quantify import chromatin_threshold, radial_profile, split_chromatin
from sxtflow.sim import simulate_cell


def ball(shape, centre, r):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= r * r


@pytest.mark.parametrize("method", ["gmm", "otsu"])
def test_shell_of_heterochromatin(method):
    """A nucleus with a dense peripheral shell: fraction, profile, one domain, Euler 2."""
    shape = (40, 40, 40)
    nucleus = ball(shape, (19.6, 20.2, 19.8), 16)
    core = ball(shape, (19.6, 20.2, 19.8), 12)
    shell = nucleus & ~core
    rng = np.random.default_rng(1)
    lac = np.where(shell, 0.35, 0.266) + rng.normal(0, 0.01, shape)
    lac[~nucleus] = 0.22
    labels, table = split_chromatin(lac, nucleus, 0.05, method=method, n_bins=4)
    row = table.iloc[0]
    truth = shell.sum() / nucleus.sum()
    assert row["heterochromatin_fraction"] == pytest.approx(truth, abs=0.02)
    assert row["volume_um3"] == pytest.approx(nucleus.sum() * 0.05**3)
    assert set(np.unique(labels[nucleus])) == {4, 6} and (labels[~nucleus] == 0).all()
    assert ((labels == 6) == shell)[nucleus].mean() > 0.97
    # radial profile: the outer quarter of depth is the shell, the inner bins none of it
    assert row["hetero_fraction_bin0"] > 0.9
    assert row["hetero_fraction_bin2"] < 0.05 and row["hetero_fraction_bin3"] < 0.05
    assert row["n_domains"] == 1 and row["largest_domain_share"] == pytest.approx(1.0, abs=0.01)
    assert row["euler_number"] == 2  # a closed shell: 1 component + 1 cavity
    assert row["compaction_ratio"] == pytest.approx(0.35 / 0.266, rel=0.03)
    assert row["method"] == method
    assert row["ashman_d"] > 3  # clearly bimodal
    prof = radial_profile(table)
    assert prof["bin"].tolist() == [0, 1, 2, 3]
    assert prof["heterochromatin_fraction"].iloc[0] == row["hetero_fraction_bin0"]


def test_fitted_per_nucleus():
    """Two nuclei at different LAC levels: one global threshold could not split both."""
    shape = (30, 30, 70)
    a = ball(shape, (15, 15, 15), 12)
    b = ball(shape, (15, 15, 52), 12)
    dense_a = ball(shape, (15, 15, 15), 7)
    dense_b = ball(shape, (15, 15, 52), 7)
    lac = np.full(shape, 0.2)
    lac[a] = 0.26
    lac[dense_a] = 0.33
    lac[b] = 0.36  # b's euchromatin is denser than a's heterochromatin
    lac[dense_b] = 0.45
    labels, table = split_chromatin(lac, a | b, (0.05, 0.05, 0.05), smooth_sigma_um=0)
    assert len(table) == 2
    for m, d, row in zip((a, b), (dense_a, dense_b), table.itertuples(), strict=True):
        assert row.heterochromatin_fraction == pytest.approx(d.sum() / m.sum(), abs=1e-9)
        assert row.hetero_fraction_bin0 == 0.0  # the dense ball is in the core
        assert row.euler_number == 1
    assert table["lac_eu_mean_per_um"].tolist() == pytest.approx([0.26, 0.36])


@pytest.fixture(scope="module")
def lymphocytes():
    out = []
    for seed, hf in ((11, 0.2), (12, 0.4)):
        lac, lab = simulate_cell(
            "lymphocyte",
            (96, 128, 128),
            80.0,
            seed=seed,
            condition={"heterochromatin_fraction": hf},
        )
        out.append((lac, lab))
    return out


@pytest.mark.parametrize("method", ["gmm", "otsu"])
def test_simulated_lymphocyte_fraction(lymphocytes, method):
    rng = np.random.default_rng(0)
    for lac, lab in lymphocytes:
        nucleus = np.isin(lab.data, [4, 5, 6])
        noisy = lac.data + rng.normal(0, 0.03, lac.data.shape).astype(np.float32)
        labels, table = split_chromatin(noisy, nucleus, lac.spacing_um, method=method)
        truth = lab.meta["truth"]["heterochromatin_fraction"]
        assert len(table) == 1
        assert table["heterochromatin_fraction"].iloc[0] == pytest.approx(truth, abs=0.05)
        # voxel-wise agreement, and denser at the envelope than in the core (as simulated)
        agree = ((labels == 6) == (lab.data == 6))[nucleus].mean()
        assert agree > 0.85
        assert table["hetero_fraction_bin0"].iloc[0] > table["hetero_fraction_bin3"].iloc[0]
        assert table["compaction_ratio"].iloc[0] > 1.1
        assert table["ashman_d"].iloc[0] > 3.5


def test_unimodal_nucleus_has_low_ashman_d():
    lac = np.random.default_rng(0).normal(0.26, 0.01, (16, 16, 16))
    _, table = split_chromatin(lac, np.ones(lac.shape, bool), 0.05, smooth_sigma_um=0)
    assert table["ashman_d"].iloc[0] < 3.0  # one Gaussian cut in two: 2.65


def test_threshold_and_input_checks():
    with pytest.raises(ValueError, match="method"):
        chromatin_threshold(np.arange(10.0), "kmeans")
    with pytest.raises(ValueError, match="at least 4"):
        chromatin_threshold(np.arange(2.0))
    m = np.ones((4, 4, 4), bool)
    with pytest.raises(ValueError, match="shapes"):
        split_chromatin(np.zeros((4, 4, 5)), m, 0.05)
    with pytest.raises(ValueError, match="spacing"):
        split_chromatin(np.zeros((4, 4, 4)), m, (0.05, 0.05))
    labels, table = split_chromatin(np.zeros((4, 4, 4)), ~m, 0.05)
    assert len(table) == 0 and not labels.any()
