"""Tests for sxtflow.segment._votes: forest probabilities tree by tree, each row leaving
once its label is decided. The labels must equal the whole forest's in every case."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)

from sxtflow.segment._votes import TreeVotes


def _data(n=3000, n_classes=4, seed=0):
    """Overlapping classes (so that many rows are close calls) in 6 features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, :2] += y[:, None] * 0.8
    return X, y


FORESTS = [
    ExtraTreesClassifier(n_estimators=31, random_state=0),
    # leaves holding several classes: votes are fractions
    RandomForestClassifier(n_estimators=20, min_samples_leaf=7, random_state=1),
    ExtraTreesClassifier(
        n_estimators=9, class_weight="balanced", min_samples_leaf=3, random_state=2
    ),  # fmt: skip
]


@pytest.mark.parametrize("forest", FORESTS, ids=["et", "rf-leaf7", "et-balanced"])
def test_labels_equal_the_whole_forest_and_undecided_rows_its_probabilities(forest):
    X, y = _data()
    forest.fit(X[:2000], y[:2000])
    test = np.ascontiguousarray(X[2000:])
    want = forest.predict_proba(test)
    votes = TreeVotes.of(forest)
    assert votes is not None
    full, used = votes.predict_proba(test, early_exit=False)
    np.testing.assert_array_equal(full, want)  # bit for bit
    assert (used == len(forest.estimators_)).all()
    p, used = votes.predict_proba(test)
    np.testing.assert_array_equal(
        p.astype(np.float32).argmax(axis=1), want.astype(np.float32).argmax(axis=1)
    )
    n = len(forest.estimators_)
    assert (used > n // 2).all() and (used <= n).all()
    assert (used < n).any() and (used == n).any()  # both kinds of rows occur here
    np.testing.assert_array_equal(p[used == n], want[used == n])
    # a row that left early has the mean vote of the trees evaluated
    for k in np.unique(used[used < n])[:3]:
        rows = np.flatnonzero(used == k)[:20]
        mean = np.mean([t.predict_proba(test[rows]) for t in forest.estimators_[:k]], axis=0)
        np.testing.assert_allclose(p[rows], mean, atol=1e-12)


def test_rows_in_pieces_and_a_row_at_a_time_agree():
    X, y = _data(n=2600, seed=3)
    forest = ExtraTreesClassifier(n_estimators=15, random_state=0).fit(X[:600], y[:600])
    votes = TreeVotes.of(forest)
    p, used = votes.predict_proba(X[600:])
    one = [votes.predict_proba(X[i : i + 1]) for i in range(600, 2600, 97)]
    np.testing.assert_array_equal(np.concatenate([a for a, _ in one]), p[::97])
    np.testing.assert_array_equal(np.concatenate([b for _, b in one]), used[::97])


def test_other_models_are_not_taken():
    X, y = _data(n=300)
    assert TreeVotes.of(HistGradientBoostingClassifier(max_iter=3).fit(X, y)) is None
    assert TreeVotes.of(object()) is None


def test_lead_is_the_top_two_difference_with_ties():
    from sxtflow.segment._votes import _lead

    rng = np.random.default_rng(4)
    acc = rng.integers(0, 6, (500, 5)).astype(np.float64)  # many ties
    top2 = np.sort(acc, axis=1)[:, -2:]
    np.testing.assert_array_equal(_lead(acc), top2[:, 1] - top2[:, 0])
    np.testing.assert_array_equal(_lead(acc[:, :2]), np.abs(acc[:, 0] - acc[:, 1]))
