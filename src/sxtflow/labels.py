"""The label table: one namespace of integer label values shared by the simulator's truth,
annotations, predictions and measurements.

Fine labels (what the simulator knows: nucleolus, heterochromatin, filopodium …) map onto
segmentation classes (what a classifier is trained to see: ice, cytoplasm, nucleus, vacuole,
lipid_droplet, mitochondrion) through the ``segment_as`` column. A segmentation class keeps the
value of the fine label with the same name, so predicted labels and truth share values.
Value 0 means "not annotated" in sparse annotations and is never a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["LabelTable", "default_labels", "UNLABELLED"]

UNLABELLED = 0


@dataclass(frozen=True)
class LabelTable:
    """Label values, names, segmentation classes, hierarchy and colours."""

    table: pd.DataFrame

    @property
    def names(self) -> list[str]:
        return list(self.table["name"])

    def value(self, name: str) -> int:
        """Label value of a name; ``KeyError`` naming the unknown label otherwise."""
        hit = self.table.loc[self.table["name"] == name, "value"]
        if hit.empty:
            raise KeyError(f"unknown label {name!r}; known: {', '.join(self.names)}")
        return int(hit.iloc[0])

    def name(self, value: int) -> str:
        hit = self.table.loc[self.table["value"] == int(value), "name"]
        if hit.empty:
            raise KeyError(f"unknown label value {value}")
        return str(hit.iloc[0])

    def colour(self, name: str) -> str:
        return str(self.table.loc[self.table["name"] == name, "colour"].iloc[0])

    def segmentation_lut(self, classes: list[str]) -> np.ndarray:
        """Lookup table (uint8, length 256) mapping fine label values to class values.

        Fine labels whose ``segment_as`` class is not in ``classes`` map to the nearest
        ancestor class that is (e.g. ``filopodium`` → ``cytoplasm``), else to 0.
        """
        lut = np.zeros(256, dtype=np.uint8)
        wanted = set(classes)
        for row in self.table.itertuples():
            target = row.segment_as
            if target not in wanted and row.parent in wanted:
                target = row.parent
            if target in wanted:
                lut[int(row.value)] = self.value(target)
        return lut

    def to_classes(self, fine: np.ndarray, classes: list[str]) -> np.ndarray:
        """Map a fine label volume onto the segmentation ``classes`` (uint8)."""
        return self.segmentation_lut(classes)[np.asarray(fine, dtype=np.uint8)]


@cache
def default_labels() -> LabelTable:
    """The bundled label table (``sxtflow/data/labels.tsv``)."""
    with resources.files("sxtflow").joinpath("data/labels.tsv").open() as fh:
        table = pd.read_csv(fh, sep="\t", keep_default_na=False)
    return LabelTable(table)
