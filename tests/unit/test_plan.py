"""Planning: per-class config follows `classes`; names in no label table fail before any job."""

import pytest

from sxtflow.labels import default_labels, load_labels
from sxtflow.plan import cell_columns, default_measures, plan_config

SIX = ["ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"]
LABELS = default_labels()


def plan(conditions=("control", "drug"), **config):
    config.setdefault("samples", "s.tsv")
    config.setdefault("compare", {"reference": "control"})
    return plan_config(config, LABELS, list(conditions))


def test_defaults_fill_every_key_and_follow_the_classes():
    p = plan(classes=SIX)
    assert set(p.config["refine"]) == {"nucleus", "vacuole", "lipid_droplet", "mitochondrion"}
    assert p.config["train"]["class_weight"] == "sqrt_balanced"
    assert p.warnings == []  # default entries of absent classes are not the user's
    cell = plan(classes=["ice", "cytoplasm"])
    assert cell.config["refine"] == {} and cell.config["measure"]["separate"] == {}
    assert cell.warnings == [] and cell.steps == {
        "chromatin": False, "fractions": False, "tests": True,
    }  # fmt: skip


def test_entries_of_classes_not_segmented_are_skipped_with_one_warning():
    p = plan(
        classes=["ice", "cytoplasm", "nucleus"],
        refine={
            "vacuole": {"min_volume_um3": 0.1},
            "mitochondrion": {"min_volume_um3": 0.1},
            "nucleus": {"max_objects": 1, "inside": "vacuole"},
        },
        measure={"separate": {"lipid_droplet": 0.1}},
        compare={"reference": "control", "measures": ["nucleus_fraction", "vacuole_count"]},
    )
    assert p.config["refine"] == {"nucleus": {"max_objects": 1}}
    assert p.config["measure"]["separate"] == {}
    assert p.config["compare"]["measures"] == ["nucleus_fraction"]
    assert set(p.warnings) == {
        "refine: skipped 'vacuole', 'mitochondrion': not among the classes "
        "(ice, cytoplasm, nucleus)",
        "refine.nucleus.inside: skipped 'vacuole': not among the classes (ice, cytoplasm, nucleus)",
        "measure.separate: skipped 'lipid_droplet': not among the classes "
        "(ice, cytoplasm, nucleus)",
        "compare.measures: skipped 'vacuole_count': not among the classes "
        "(ice, cytoplasm, nucleus)",
    }


def test_names_in_no_table_are_errors_listed_at_once():
    # today: a misspelt refine class is ignored, a misspelt separate/measure fails hours later
    with pytest.raises(ValueError) as err:
        plan(
            classes=SIX,
            refine={"nucleous": {"max_objects": 1}, "mitochondrion": {"inside": "nucelus"}},
            measure={"separate": {"lipid_droplets": 0.1}},
            compare={"reference": "control", "measures": ["nucleus_fractoin", "ice_fraction"]},
        )
    text = str(err.value)
    for needle in (
        "refine: 'nucleous' is in no label table (bundled)",
        "refine.mitochondrion.inside: 'nucelus' is in no label table",
        "measure.separate: 'lipid_droplets' is in no label table",
        "compare.measures: 'nucleus_fractoin' is not a per-cell column",
        "compare.measures: 'ice_fraction' is not a per-cell column",
    ):
        assert needle in text, text


def test_misspelt_class_is_an_error():
    with pytest.raises(ValueError, match="config 'classes': 'nucleous' not in the label table"):
        plan(classes=["ice", "nucleous"])


def test_reference_defaults_to_the_only_condition_and_is_required_with_several():
    p = plan(conditions=["capillary"], classes=["ice", "cytoplasm"], compare={})
    assert p.config["compare"]["reference"] == "capillary" and not p.steps["tests"]
    with pytest.raises(ValueError, match="compare.reference: not set.*2 conditions"):
        plan(classes=SIX, compare={})
    with pytest.raises(ValueError, match="'control' is not a condition.*capillary"):
        plan(conditions=["capillary"], classes=SIX)


def test_default_measures_follow_the_classes():
    p = plan(classes=SIX)
    assert p.config["compare"]["measures"] == [
        "cell_volume_um3",
        "nucleus_fraction",  # one nucleus per cell (refine): its count is no measure
        "vacuole_fraction",
        "vacuole_count",
        "lipid_droplet_fraction",
        "lipid_droplet_count",
        "mitochondrion_fraction",
        "mitochondrion_count",
    ]
    assert default_measures(["ice", "cytoplasm"]) == [
        "cell_volume_um3", "cell_surface_um2", "cell_sphericity", "cell_lac_mean_per_um",
    ]  # fmt: skip


def test_own_table_class_is_planned(tmp_path):
    path = tmp_path / "labels.tsv"
    rows = LABELS.to_records() + [
        {"value": 12, "name": "granule", "segment_as": "granule", "parent": "cell", "colour": ""}
    ]
    path.write_text(
        "value\tname\tsegment_as\tparent\tcolour\n"
        + "".join("\t".join(str(r[k]) for k in r) + "\n" for r in rows)
    )
    table = load_labels(path)
    p = plan_config(
        {
            "samples": "s.tsv",
            "classes": ["ice", "cytoplasm", "granule"],
            "measure": {"separate": {"granule": 0.05}},
            "compare": {"reference": "a"},
        },
        table,
        ["a", "b"],
    )
    assert p.classes == {"ice": 1, "cytoplasm": 2, "granule": 12}
    assert p.config["measure"]["separate"] == {"granule": 0.05}
    assert p.config["compare"]["measures"] == [
        "cell_volume_um3", "granule_fraction", "granule_count",
    ]  # fmt: skip
    assert "granule_lac_mean_per_um_median" in cell_columns(p.classes)
