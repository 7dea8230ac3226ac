"""Forest probabilities tree by tree, each voxel leaving once its label is decided
(:class:`TreeVotes`).
"""

from __future__ import annotations

import numpy as np

# tree votes by which the leading class must lead beyond what the trees not yet evaluated
# could give the runner-up: keeps the decision clear of float rounding in the sums and in
# the float32 probabilities the labels are taken from (a lead of 1e-3 votes is 2e-5 in
# probability for 50 trees, 300 float32 steps at 0.5)
_LEAD_TOL = 1e-3
# rows per pass over the trees: their float64 vote sums (40 bytes a row for 5 classes)
# stay in the CPU cache (measured 5–10 % faster than 256 k rows)
_ROWS = 1 << 15


class TreeVotes:
    """A fitted scikit-learn forest classifier's ``predict_proba``, optionally stopping early
    for voxels whose most probable class can no longer change.

    Each tree gives every class a vote in ``[0, v]`` (``v`` ≤ 1: the class fractions of
    the voxel's leaf) and the forest's probabilities are the mean vote. After ``k`` of
    ``n`` trees, the trees left can add at most ``(n − k)·v`` to any class, so a voxel
    whose leading class leads the runner-up by more than that has its final label
    already: it is taken from the ``k`` trees' votes and no further tree is evaluated for
    it. Labels therefore equal the whole forest's exactly; such a voxel's probabilities
    are the mean vote of the trees evaluated (at least ``n/2`` of them), the others'
    are the forest's own, bit for bit (the same float64 sums in the same order as
    scikit-learn's ``predict_proba`` with one job).

    Parameters
    ----------
    model : RandomForestClassifier or ExtraTreesClassifier
        Fitted, one output. Use :meth:`of` to get None for other models.
    """

    def __init__(self, model):
        n_cls = int(model.n_classes_)
        self.trees = [est.tree_ for est in model.estimators_]
        self.tables = [np.ascontiguousarray(t.value[:, 0, :n_cls]) for t in self.trees]
        self.vote_max = float(max(t.max() for t in self.tables))
        self.n_classes = n_cls

    @classmethod
    def of(cls, model) -> TreeVotes | None:
        """:class:`TreeVotes` for a forest whose trees hold class fractions, else None
        (other models, several outputs, or trees storing counts: scikit-learn < 1.4)."""
        trees = getattr(model, "estimators_", None)
        if (
            not isinstance(trees, list)
            or not trees
            or getattr(model, "n_outputs_", 1) != 1
            or not all(hasattr(t, "tree_") for t in trees)
        ):
            return None
        votes = cls(model)
        for t in votes.tables:
            s = t.sum(axis=1)
            if t.min() < 0 or not np.allclose(s[s > 0], 1.0, atol=1e-6):
                return None
        return votes

    def checkpoints(self) -> list[int]:
        """Tree counts after which undecided voxels are tested: from the first count at
        which a unanimous vote decides (more than half the trees), every few trees."""
        n = len(self.trees)
        first = n // 2 + 1
        step = max(1, n // 25)
        return [k for k in range(first, n, step)]

    def predict_proba(self, X: np.ndarray, *, early_exit: bool = True):
        """Class probabilities ``(n, n_classes)`` float64 (columns as ``model.classes_``)
        and the number of trees evaluated per row (int16).

        Parameters
        ----------
        X : ndarray, shape (n, n_features), float32, C-contiguous
        early_exit : bool
            Stop for a row once its label is decided (see the class); False evaluates every
            tree (then equal to the model's ``predict_proba`` with ``n_jobs=1``).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty((X.shape[0], self.n_classes), dtype=np.float64)
        used = np.full(X.shape[0], len(self.trees), dtype=np.int16)
        for i in range(0, X.shape[0], _ROWS):
            self._rows(X[i : i + _ROWS], out[i : i + _ROWS], used[i : i + _ROWS], early_exit)
        return out, used

    def _rows(self, X, out, used, early_exit: bool) -> None:
        """:meth:`predict_proba` of a few rows (its vote sums stay in the CPU cache)."""
        n_trees = len(self.trees)
        rows = np.arange(X.shape[0])
        acc = np.zeros_like(out)
        buf = np.empty_like(out)
        checks = set(self.checkpoints()) if early_exit and self.n_classes > 1 else set()
        for k, (tree, table) in enumerate(zip(self.trees, self.tables, strict=True), 1):
            vote = buf[: rows.size]
            np.take(table, tree.apply(X), axis=0, out=vote)
            acc += vote
            if k in checks and rows.size:
                done = _lead(acc) > (n_trees - k) * self.vote_max + _LEAD_TOL
                idx = np.flatnonzero(done)
                if idx.size:
                    out[rows[idx]] = acc[idx] / k
                    used[rows[idx]] = k
                    keep = np.flatnonzero(~done)  # np.take: faster than a boolean index
                    rows, X, acc = rows[keep], X.take(keep, axis=0), acc.take(keep, axis=0)
                    if not rows.size:
                        return
        out[rows] = acc / n_trees


def _lead(acc: np.ndarray) -> np.ndarray:
    """Per row of ``acc`` (rows × classes, ≥ 2 classes): the largest value minus the second
    largest (equal to ``np.partition``'s top two; by a running comparison over the
    columns, a few times faster for so few classes)."""
    top = np.maximum(acc[:, 0], acc[:, 1])
    second = np.minimum(acc[:, 0], acc[:, 1])
    low = np.empty_like(top)
    for j in range(2, acc.shape[1]):
        np.minimum(top, acc[:, j], out=low)
        np.maximum(second, low, out=second)
        np.maximum(top, acc[:, j], out=top)
    top -= second
    return top
