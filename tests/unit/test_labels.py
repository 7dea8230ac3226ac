import numpy as np
import pytest

from sxtflow.io import InputError
from sxtflow.labels import CELL, default_labels, load_labels, locate_labels

HEADER = "value\tname\tsegment_as\tparent\tcolour\n"
SIX = ["ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"]


def write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "labels.tsv"
    path.write_text(header + "".join("\t".join(r) + "\n" for r in rows))
    return path


def test_bundled_table_is_the_repository_resource():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2] / "resources" / "labels.tsv"
    own = load_labels(repo)
    assert own.to_records() == default_labels().to_records()
    assert default_labels().segmentation_classes == SIX


def test_own_table_adds_a_class_and_keeps_colours(tmp_path):
    path = write(
        tmp_path,
        ("1", "ice", "ice", "", "#2b3a55"),
        ("2", "cytoplasm", "cytoplasm", "cell", ""),
        ("4", "nucleus", "", "cell", "#4f7cff"),
        ("12", "nuclear_envelope", "", "nucleus", "#aa00aa"),
        ("13", "granule", "granule", "cell", "#00aa00"),
    )
    t = load_labels(path)
    assert t.source == str(path)
    assert t.class_values(["ice", "cytoplasm", "granule"]) == {
        "ice": 1, "cytoplasm": 2, "granule": 13,
    }  # fmt: skip
    assert t.colour("granule") == "#00aa00"
    assert t.colour("cytoplasm").startswith("#")  # empty colour → palette
    assert t.colour(CELL) == t.colour("cytoplasm")
    # an empty segment_as = its own class; the envelope follows its parent
    assert t.class_of("nuclear_envelope", ["ice", "cytoplasm", "nucleus"]) == "nucleus"
    assert t.class_of("nuclear_envelope", ["ice", "cytoplasm", "nuclear_envelope"]) == (
        "nuclear_envelope"
    )
    # without nucleus the chain reaches the cell root: cytoplasm
    assert t.class_of("nuclear_envelope", ["ice", "cytoplasm"]) == "cytoplasm"
    assert t.class_of("ice", ["cytoplasm", "nucleus"]) is None


def test_lut_maps_fine_labels_onto_any_class_set():
    t = default_labels()
    fine = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    six = t.to_classes(fine, SIX).ravel().tolist()
    assert six == [0, 1, 2, 2, 4, 4, 4, 7, 8, 9, 2, 2]
    # a cell-only class set: every cellular label is cytoplasm, ice stays ice
    assert t.to_classes(fine, ["ice", "cytoplasm"]).ravel().tolist() == [0, 1] + [2] * 10
    # a fine label listed as a class is its own class
    assert t.to_classes(fine, [*SIX, "nucleolus"]).ravel()[5] == 5


def test_unmapped_values_names_unknown_and_classless_values():
    t = default_labels()
    out = t.unmapped_values([0, 1, 4, 40, 200], ["cytoplasm", "nucleus"])
    assert out == {"unknown": [40, 200], "unmapped": [1]}


def test_check_classes_names_the_typo_and_the_table():
    with pytest.raises(ValueError, match=r"'nucleous' not in the label table \(bundled\)"):
        default_labels().check_classes(["ice", "nucleous"])


def test_every_table_problem_is_named_with_its_row(tmp_path):
    path = write(
        tmp_path,
        ("1", "ice", "ice", "", "#2b3a55"),
        ("1", "cytoplasm", "cytoplasm", "cell", "blue"),
        ("300", "2nd", "", "", ""),
        ("4", "nucleus", "nucleolus", "cell", ""),
        ("5", "nucleolus", "nucleus", "nucleus", ""),
        ("6", "cell", "", "", ""),
        ("7", "granule", "", "organelle", ""),
    )
    with pytest.raises(InputError) as err:
        load_labels(path)
    text = str(err.value)
    assert str(path) in text
    for needle in (
        "row 2: value: 1 also in row 1",
        "row 2 ('cytoplasm'): colour: 'blue' is not #rrggbb",
        "row 3 ('2nd'): value: '300' is not an integer 1–255",
        "row 3 ('2nd'): name: must be a letter",
        "row 4 ('nucleus'): segment_as: 'nucleolus' is not a class",
        "row 6 ('cell'): name: 'cell' is reserved",
        "row 7 ('granule'): parent: 'organelle' is not a name of the table or 'cell'",
    ):
        assert needle in text, text


def test_parent_cycle_and_missing_columns(tmp_path):
    path = write(tmp_path, ("1", "a", "", "b", ""), ("2", "b", "", "a", ""))
    with pytest.raises(InputError, match="cycle a -> b -> a"):
        load_labels(path)
    path = write(tmp_path, ("1", "ice"), header="value\tlabel\n")
    with pytest.raises(InputError, match="missing column"):
        load_labels(path)
    with pytest.raises(InputError, match="does not exist"):
        load_labels(tmp_path / "none.tsv")


def test_locate_labels(tmp_path):
    assert locate_labels(None, tmp_path) is None  # bundled
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "labels.tsv").write_text(HEADER + "1\tice\t\t\t\n")
    assert locate_labels(None, tmp_path) == tmp_path / "resources" / "labels.tsv"
    with pytest.raises(InputError, match="config 'labels'"):
        locate_labels("mine.tsv", tmp_path)
