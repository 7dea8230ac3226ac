"""Every option of every stage with its default: the one place defaults are defined.

The workflow fills the keys a config leaves out from :data:`DEFAULTS`
(:func:`with_defaults`, called in ``workflow/rules/common.smk`` before the schema check), the
stage functions of :mod:`sxtflow.stages` take their keyword defaults from it, and so does the
``sxtflow`` command line. ``workflow/schemas/config.schema.yaml`` states the type and range
of each key and holds no defaults; ``tests/unit/test_options.py`` fails when the schema, the
stages, the CLI or ``config/README.md`` disagree with this table.

Sections keyed by class (``refine``, ``measure.separate``) are defaults *per class*: a class's
entry in a config replaces the default entry of that class, and default entries of classes
that are not segmented are left out (:func:`with_defaults`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

__all__ = ["DEFAULTS", "PER_CLASS", "stage", "with_defaults"]

DEFAULTS: dict = {
    "seed": 7,
    "labels": None,
    "classes": ["ice", "cytoplasm", "nucleus", "vacuole", "lipid_droplet", "mitochondrion"],
    "simulate": {
        "shape": [96, 112, 112],
        "voxel_nm": 50.0,
        "energy_ev": 517.0,
        "n_angles": 120,
        "tilt_range_deg": None,
        "photons": 3000.0,
        "blur_nm": 40.0,
        "jitter_px": 0.0,
        "conditions": {},
        "annotation": {"slices_per_class": 3, "mode": "scribbles", "rim": True},
    },
    "reconstruct": {
        "algorithm": "auto",
        "filter": "shepp-logan",
        "center": "auto",
        "iterations": 300,
        "tv_weight": 0.01,
        "backend": "builtin",
        "stripe": False,
        "align": False,
        "binning": 1,
        "crop_rows": None,
        "crop_cols": None,
        "resample_to_nm": None,
        "energy_ev": 517.0,
    },
    "features": {
        "sigmas": [0.7, 1.0, 1.6, 3.5, 5.0],
        "families": ["gaussian", "log", "ggm", "dog", "structure_tensor", "hessian"],
        "family_sigmas": {},
        "block": [64, 64, 64],
    },
    "train": {
        "estimator": "random_forest",
        "n_estimators": 100,
        "max_depth": 18,
        "min_samples_leaf": 3,
        "max_per_class": 50000,
        "class_weight": "sqrt_balanced",
        "min_cv_skill": 0.2,
        "fill_outlines": True,
    },
    "predict": {"block": [64, 128, 128], "coarse": 4, "exact_probabilities": False},
    "refine": {
        "nucleus": {
            "min_volume_um3": 0.05,
            "max_objects": 1,
            "fill_holes": True,
            "smooth_radius_um": 0.15,
            "boundary_um": 0.16,
        },
        "vacuole": {"min_volume_um3": 0.02, "fill_holes": True, "boundary_um": 0.08},
        "lipid_droplet": {"min_volume_um3": 0.002, "fill_holes": True, "boundary_um": 0.08},
        "mitochondrion": {"min_volume_um3": 0.005, "inside": "nucleus", "boundary_um": 0.12},
    },
    "evaluate": {"ignore": []},
    "mesh": {"smooth_iterations": 20},
    "measure": {
        "min_volume_um3": 0.005,
        "contact_distance_um": None,
        "separate": {"lipid_droplet": 0.1, "vacuole": 0.15},
    },
    "chromatin": {"method": "gmm", "smooth_sigma_um": None, "n_bins": 5},
    "surface": {"body_radius_um": 0.5, "min_length_um": 0.3},
    "compare": {"reference": None, "alpha": 0.05, "n_boot": 2000, "measures": None},
    "export": {"ome_zarr": False, "levels": "auto", "chunks": [64, 128, 128]},
    "threads": {"reconstruct": 2, "train": 2, "predict": 2, "refine": 2},
}

#: Config paths whose mapping is keyed by class name (defaults per class).
PER_CLASS: tuple[tuple[str, ...], ...] = (("refine",), ("measure", "separate"))


def stage(section: str) -> dict:
    """A deep copy of the defaults of one config section, e.g. ``stage("train")``.

    Examples
    --------
    >>> stage("train")["class_weight"]
    'sqrt_balanced'
    """
    return copy.deepcopy(DEFAULTS[section])


def _merge(default, given, path: tuple[str, ...], classes: set[str] | None):
    if path in PER_CLASS:
        base = {k: v for k, v in default.items() if classes is None or k in classes}
        return {**copy.deepcopy(base), **copy.deepcopy(dict(given or {}))}
    if isinstance(default, Mapping) and isinstance(given, Mapping) and default:
        out = {k: copy.deepcopy(v) for k, v in given.items() if k not in default}
        for key, value in default.items():
            sub = (*path, key)
            if key in given:
                out[key] = _merge(value, given[key], sub, classes)
            elif (isinstance(value, Mapping) and value) or sub in PER_CLASS:
                out[key] = _merge(value, {}, sub, classes)
            else:
                out[key] = copy.deepcopy(value)
        return out
    return copy.deepcopy(given)


def with_defaults(config: Mapping, classes: Iterable[str] | None = None) -> dict:
    """``config`` with every key it leaves out taken from :data:`DEFAULTS`.

    Parameters
    ----------
    config : mapping
        A (partial) configuration; its values win.
    classes : iterable of str, optional
        The segmentation classes; per-class default entries (:data:`PER_CLASS`) of other
        classes are left out. Default: ``config["classes"]`` or the default classes.

    Returns
    -------
    dict
        A new dict (``config`` is not modified). Keys unknown to :data:`DEFAULTS` are kept
        as given (the schema check reports them).

    Examples
    --------
    >>> cfg = with_defaults({"samples": "s.tsv", "classes": ["ice", "cytoplasm", "nucleus"],
    ...                      "train": {"n_estimators": 10}})
    >>> cfg["train"]["n_estimators"], cfg["train"]["max_depth"], sorted(cfg["refine"])
    (10, 18, ['nucleus'])
    """
    if classes is None:
        classes = config.get("classes") or DEFAULTS["classes"]
    return _merge(DEFAULTS, dict(config), (), set(classes))
