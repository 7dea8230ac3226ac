"""Planning: a configuration resolved for its class set and sample sheet, before any job runs.

Everything per class follows ``classes``: refine rules, ``measure.separate``,
``compare.measures``, the comparison's plots and report sections, the chromatin step (needs a
``nucleus`` class). :func:`plan_config` drops entries of classes that are not segmented with
one warning listing them all, and refuses names that are in no label table (typos) with one
error listing them all, so a misspelt class fails in a second, not after hours of
reconstruction. The default primary measures (config ``compare.measures: null``) are derived
from the classes (:func:`default_measures`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .labels import GROUND, MEDIUM, LabelTable
from .options import with_defaults

__all__ = [
    "Plan",
    "plan_config",
    "cell_columns",
    "default_measures",
    "measured_classes",
    "organelle_classes",
    "CELL_COLUMNS",
    "CLASS_COLUMNS",
    "OBJECT_MEDIANS",
]

#: Per-cell columns that belong to no class (``cell.tsv``: :func:`sxtflow.quantify.cell_summary`
#: and :func:`sxtflow.quantify.surface_summary`).
CELL_COLUMNS: tuple[str, ...] = (
    "cell_volume_um3",
    "cell_surface_um2",
    "cell_sphericity",
    "cell_lac_mean_per_um",
    "body_volume_um3",
    "protrusion_volume_um3",
    "protrusion_volume_fraction",
    "n_protrusions",
    "n_filopodia",
    "n_lamellipodia",
    "n_blebs",
    "body_surface_um2",
    "surface_roughness",
    "body_roughness",
    "body_radius_um",
)
#: Per-cell columns of every measured class ``<class>_<suffix>``.
CLASS_COLUMNS: tuple[str, ...] = ("count", "volume_um3", "fraction", "lac_mean_per_um")
#: Per-cell medians over the objects of each organelle class (:func:`sxtflow.stats.per_cell`).
OBJECT_MEDIANS: tuple[str, ...] = (
    "volume_um3_median",
    "sphericity_median",
    "lac_mean_per_um_median",
)


def measured_classes(classes: Iterable[str]) -> list[str]:
    """The classes measured in ``cell.tsv``: every class but the medium (``ice``)."""
    return [c for c in classes if c != MEDIUM]


def organelle_classes(classes: Iterable[str]) -> list[str]:
    """The organelle classes: every class but ``ice`` and ``cytoplasm``."""
    return [c for c in classes if c not in (MEDIUM, GROUND)]


def cell_columns(classes: Iterable[str]) -> list[str]:
    """Every per-cell column of the comparison table (``results/compare/cells.tsv``).

    Examples
    --------
    >>> cols = cell_columns(["ice", "cytoplasm", "granule"])
    >>> "granule_fraction" in cols and "cytoplasm_fraction" in cols
    True
    >>> "ice_fraction" in cols, "granule_sphericity_median" in cols
    (False, True)
    """
    classes = list(classes)
    out = list(CELL_COLUMNS)
    out += [f"{c}_{s}" for c in measured_classes(classes) for s in CLASS_COLUMNS]
    out += [f"{c}_{s}" for c in organelle_classes(classes) for s in OBJECT_MEDIANS]
    return out


def default_measures(classes: Iterable[str], refine: Mapping | None = None) -> list[str]:
    """The primary measures for a class set: cell volume, then the volume fraction and the
    count of every organelle class (no count where a ``refine`` rule keeps one object); a
    cell-only set compares the cell's volume, surface, sphericity and mean LAC.

    Examples
    --------
    >>> default_measures(["ice", "cytoplasm", "nucleus", "vacuole"],
    ...                  {"nucleus": {"max_objects": 1}})
    ['cell_volume_um3', 'nucleus_fraction', 'vacuole_fraction', 'vacuole_count']
    >>> default_measures(["ice", "cytoplasm"])
    ['cell_volume_um3', 'cell_surface_um2', 'cell_sphericity', 'cell_lac_mean_per_um']
    """
    organelles = organelle_classes(classes)
    if not organelles:
        return ["cell_volume_um3", "cell_surface_um2", "cell_sphericity", "cell_lac_mean_per_um"]
    out = ["cell_volume_um3"]
    for c in organelles:
        out.append(f"{c}_fraction")
        if ((refine or {}).get(c) or {}).get("max_objects") != 1:
            out.append(f"{c}_count")
    return out


def _measure_label(name: str, labels: LabelTable) -> str | None:
    """The label a per-cell column is about (``lipid_droplet_count`` → ``lipid_droplet``)."""
    suffixes = [*CLASS_COLUMNS, *OBJECT_MEDIANS]
    for label in sorted(labels.names, key=len, reverse=True):
        if name.startswith(label + "_") and name[len(label) + 1 :] in suffixes:
            return label
    return None


@dataclass
class Plan:
    """A configuration resolved for a class set.

    Attributes
    ----------
    config : dict
        Every key filled (defaults of :mod:`sxtflow.options`), per-class entries of classes
        not segmented dropped, ``compare.reference`` and ``compare.measures`` resolved.
    classes : dict of str to int
        Class name → label value, in config order.
    warnings : list of str
        One line per kind of skipped entry (logged once when planning).
    steps : dict of str to bool
        Optional steps that the class set allows: ``chromatin`` (a ``nucleus`` class),
        ``fractions`` (an organelle class), ``tests`` (two conditions or more).
    """

    config: dict
    classes: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    steps: dict[str, bool] = field(default_factory=dict)


def plan_config(config: Mapping, labels: LabelTable, conditions: Sequence[str] = ()) -> Plan:
    """Resolve a configuration for its classes and the conditions of its sample sheet.

    Parameters
    ----------
    config : mapping
        The workflow's configuration (missing keys are filled from the defaults).
    labels : LabelTable
        The label table in use (:func:`sxtflow.labels.load_labels`).
    conditions : sequence of str
        The conditions of the sample sheet (any order, repeats allowed).

    Returns
    -------
    Plan

    Raises
    ------
    ValueError
        Listing, at once, every name that is in no label table (``classes``, ``refine``
        keys and ``inside`` targets, ``measure.separate`` keys, the classes of
        ``compare.measures``), every ``compare.measures`` entry that is no per-cell column,
        and a ``compare.reference`` that is not a condition (or missing with several
        conditions).

    Examples
    --------
    >>> from sxtflow.labels import default_labels
    >>> p = plan_config({"samples": "s.tsv", "classes": ["ice", "cytoplasm"]},
    ...                 default_labels(), ["wt"])
    >>> p.config["refine"], p.config["compare"]["reference"], p.steps["tests"]
    ({}, 'wt', False)
    """
    given = copy.deepcopy(dict(config))
    problems: list[str] = []
    chosen = given.get("classes") or with_defaults({})["classes"]
    classes = {c: labels.value(c) for c in labels.check_classes(chosen, what="config 'classes'")}
    names = list(classes)
    cfg = with_defaults(given, names)
    skipped: dict[str, list[str]] = {}

    def known(key: str, name: str) -> bool:
        if name in labels.names:
            return True
        problems.append(
            f"{key}: {name!r} is in no label table ({labels.source}); classes are "
            f"{', '.join(names)}"
        )
        return False

    def keep(key: str, name: str) -> bool:
        if not known(key, name):
            return False
        if name in classes:
            return True
        skipped.setdefault(key, []).append(name)
        return False

    refine = {}
    for name, rule in (cfg.get("refine") or {}).items():
        if not keep("refine", name):
            continue
        rule = dict(rule or {})
        target = rule.get("inside")
        if target is not None and not keep(f"refine.{name}.inside", target):
            rule.pop("inside")
            rule.pop("inside_fraction", None)
        refine[name] = rule
    cfg["refine"] = refine

    measure = cfg["measure"]
    measure["separate"] = {
        k: v for k, v in (measure.get("separate") or {}).items() if keep("measure.separate", k)
    }

    compare = cfg["compare"]
    columns = set(cell_columns(names))
    if compare.get("measures") is None:
        compare["measures"] = default_measures(names, refine)
    else:
        chosen = []
        for m in compare["measures"]:
            label = None if m in columns else _measure_label(m, labels)
            if m in columns:
                chosen.append(m)
            elif label is not None and label not in classes:
                skipped.setdefault("compare.measures", []).append(m)
            else:
                problems.append(
                    f"compare.measures: {m!r} is not a per-cell column for the classes "
                    f"{', '.join(names)}; they are {', '.join(CELL_COLUMNS)} and "
                    f"<class>_<{'|'.join((*CLASS_COLUMNS, *OBJECT_MEDIANS))}> "
                    "(ice is not measured; medians only for organelles)"
                )
        if not chosen and not problems:
            skipped_all = ", ".join(compare["measures"])
            compare["measures"] = default_measures(names, refine)
            skipped.setdefault("compare.measures (none left: the default is used)", []).append(
                skipped_all
            )
        else:
            compare["measures"] = chosen

    conds = sorted(set(map(str, conditions)))
    reference = compare.get("reference")
    if reference is None:
        if len(conds) > 1:
            problems.append(
                f"compare.reference: not set, and the sample sheet has {len(conds)} conditions "
                f"({', '.join(conds)}); name the control condition"
            )
        elif conds:
            compare["reference"] = conds[0]
    elif conds and reference not in conds:
        problems.append(
            f"compare.reference: {reference!r} is not a condition of the sample sheet "
            f"({', '.join(conds)})"
        )

    steps = {
        "chromatin": "nucleus" in classes,
        "fractions": bool(organelle_classes(names)),
        "tests": len(conds) > 1,
    }
    if problems:
        raise ValueError("config:\n  " + "\n  ".join(problems))
    warnings = [
        f"{key}: skipped {', '.join(map(repr, dict.fromkeys(items)))}: not among the classes "
        f"({', '.join(names)})"
        for key, items in skipped.items()
    ]
    if given.get("chromatin") and not steps["chromatin"]:
        warnings.append("chromatin: no 'nucleus' class, so no chromatin split is made")
    return Plan(cfg, classes, warnings, steps)
