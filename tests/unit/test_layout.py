"""The package layout: old import paths keep working, warn, and resolve to the new objects.

``sxtflow.io`` (a module until issue 16, now a package), ``sxtflow.reconstruct`` (now the
``sxtflow.recon`` package) and ``sxtflow.compare`` (now ``sxtflow.stats`` and ``sxtflow.plot``)
keep every public name they had, as the same objects as the new homes, and warn
(``DeprecationWarning``) when imported. No module of the project imports them. Saved models name no
sxtflow module, so moving modules cannot stop a trained model from loading.
"""

import importlib

import pytest

#: the public names of the modules before the split (their ``__all__`` on main at 785709b)
OLD_PUBLIC = {
    "sxtflow.io": [
        "InputError", "OutputError", "remove_stale_temporaries", "LAC_RANGE_PER_UM",
        "check_lac", "as_spacing_um", "Volume", "Projections", "atomic_path", "read_volume",
        "read_amira", "write_amira", "read_meta", "create_zarr_array", "INTEGRITY_RECORD",
        "seal_store", "verify_store", "store_token", "write_volume", "read_projections",
        "read_angles", "MAX_NONPOSITIVE_FRACTION", "write_projections", "read_table",
        "read_text_table", "write_table", "write_json", "read_json", "check_finite",
    ],
    "sxtflow.reconstruct": [
        "FILTERS", "MATRIX_BUDGET_BYTES", "normalize", "minus_log", "remove_outliers",
        "remove_stripes", "bin_projections", "crop_projections", "auto_algorithm",
        "angular_coverage", "shift_projections", "align_coarse", "align_projections",
        "forward_project", "back_project", "fbp", "sirt", "center_metric", "find_center",
        "reconstruct", "BACKENDS", "available_backends", "astra_available", "ice_lac",
        "normalize_to_ice",
    ],
    "sxtflow.compare": [
        "DEFAULT_OBJECT_MEASURES", "primary_measures", "stack_tables", "per_cell", "summarise",
        "test_conditions", "untested", "dunn_test", "mann_whitney", "holm", "cliffs_delta",
        "measure_unit", "plot_measures", "plot_fractions", "plot_lac_histograms",
        "plot_radial_profiles", "PROFILE_COLUMNS",
    ],
    "sxtflow.qc": ["reconstruction_preview", "uncertainty_preview"],
    "sxtflow.features": [
        "FAMILIES", "FeatureSpec", "FAST_SPEC", "compute_features", "block_features",
        "BlockFeatures", "write_features", "open_features", "iter_blocks", "eigvalsh3",
        "gaussian_kernel",
    ],
    "sxtflow.evaluate": ["dice_iou"],
    "sxtflow.mesh": [
        "mask_mesh", "object_meshes", "class_meshes", "write_scene", "write_ply",
        "decimate_for_display", "render", "slice_panel",
    ],
    "sxtflow.classify": [
        "ESTIMATORS", "CLASS_WEIGHTS", "training_samples", "train", "save_model", "load_model",
        "predict", "predict_volume", "uncertainty", "slice_uncertainty", "suggest_slices",
    ],
    "sxtflow.measure": [
        "instances", "measure_objects", "cell_summary", "cell_mask", "OBJECT_COLUMNS",
        "CELL_CLASS",
    ],
    "sxtflow.relations": ["surface_voxels", "object_relations", "RELATION_BASE_COLUMNS"],
    "sxtflow.chromatin": ["split_chromatin", "chromatin_threshold", "radial_profile"],
    "sxtflow.surface": ["cell_body", "protrusions", "surface_summary", "PROTRUSION_COLUMNS"],
    "sxtflow.refine": [
        "refine_labels", "snap_boundaries", "estimate_blur", "separate_instances",
        "DEFAULT_RULES",
    ],
    "sxtflow.simulate": [
        "COMPOSITIONS", "CONDITION_KEYS", "material_lac", "compartment_lac", "simulate_cell",
        "tilt_angles", "project", "degrade", "annotate", "ANNOTATION_MODES",
    ],
}  # fmt: skip

#: where each old module's names live now (the first package holding the name wins)
NEW_HOMES = {
    "sxtflow.io": ["sxtflow.core", "sxtflow.io"],
    "sxtflow.reconstruct": ["sxtflow.recon"],
    "sxtflow.compare": ["sxtflow.stats", "sxtflow.plot"],
    "sxtflow.qc": ["sxtflow.plot"],
    "sxtflow.features": ["sxtflow.segment"],
    "sxtflow.evaluate": ["sxtflow.segment"],
    "sxtflow.mesh": ["sxtflow.quantify", "sxtflow.plot"],
    "sxtflow.classify": ["sxtflow.segment"],
    "sxtflow.measure": ["sxtflow.quantify"],
    "sxtflow.relations": ["sxtflow.quantify"],
    "sxtflow.chromatin": ["sxtflow.quantify"],
    "sxtflow.surface": ["sxtflow.quantify"],
    "sxtflow.refine": ["sxtflow.segment"],
    "sxtflow.simulate": ["sxtflow.sim"],
}


#: the deprecated alias modules (every old module but io, which is a package now)
ALIASES = sorted(set(OLD_PUBLIC) - {"sxtflow.io"})

#: the task packages (their __init__ lists the public names once)
PACKAGES = (
    "sxtflow.io",
    "sxtflow.recon",
    "sxtflow.stats",
    "sxtflow.plot",
    "sxtflow.segment",
    "sxtflow.quantify",
)


def _home(old: str, name: str):
    for module in NEW_HOMES[old]:
        mod = importlib.import_module(module)
        if hasattr(mod, name) and module != old:
            return getattr(mod, name)
    return None


@pytest.mark.parametrize("old", sorted(OLD_PUBLIC))
def test_old_import_paths_resolve_to_the_new_objects(old):
    if old in ALIASES:  # warns on import (reloaded: another test may have imported it)
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
            mod = importlib.reload(importlib.import_module(old))
    else:  # sxtflow.io: a module become a package of the same name
        mod = importlib.import_module(old)
    missing = [n for n in OLD_PUBLIC[old] if not hasattr(mod, n)]
    assert not missing, f"{old} lost {missing}"
    assert set(OLD_PUBLIC[old]) <= set(mod.__all__), f"{old}.__all__ lost names"
    for name in OLD_PUBLIC[old]:
        new = _home(old, name)
        if new is not None:
            assert getattr(mod, name) is new, f"{old}.{name} is not the new object"


def test_every_public_name_of_a_package_is_defined_once():
    # the package __init__ lists its public names; each is the object of one private module
    for package in PACKAGES:
        mod = importlib.import_module(package)
        assert len(mod.__all__) == len(set(mod.__all__)), package
        for name in mod.__all__:
            obj = getattr(mod, name)
            home = getattr(obj, "__module__", None)
            if home is not None and callable(obj):
                assert home.startswith(("sxtflow.core", package)), f"{package}.{name}: {home}"


def test_the_shared_types_live_in_core():
    from sxtflow import core, io, recon

    assert io.Volume is core.Volume and io.Projections is core.Projections
    assert io.InputError is core.InputError
    assert recon.reconstruct.__module__ == "sxtflow.recon._pipeline"
    # a subclass defined in io is still an InputError (the CLI and the rules catch that)
    assert issubclass(io.OutputError, core.InputError)


def test_saved_models_name_no_sxtflow_module():
    # skops records the module path of every object it saves and load_model trusts only the
    # types in this list: a type of ours there would tie old models to a module path
    from sxtflow.segment._model import _ALLOWED_TYPES

    assert _ALLOWED_TYPES and not [t for t in _ALLOWED_TYPES if t.startswith("sxtflow")]


def test_rules_use_named_functions_not_lambdas():
    # Snakemake catalog style: inputs and params computed per job are named functions in
    # workflow/rules/common.smk, so a reader finds them by name
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    assert len(files) > 5
    found = [
        f"{f.name}:{i}"
        for f in files
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if "lambda" in line.split("#", 1)[0]
    ]
    assert not found, f"lambdas in rules: {found}"


def test_task_packages_load_their_modules_on_first_use():
    # lazy_loader: importing a package imports none of its modules, so a rule's env needs
    # only what the rule calls (the reconstruct rule draws a preview: no trimesh)
    import subprocess
    import sys

    code = (
        "import sys, sxtflow.plot, sxtflow.segment, sxtflow.quantify\n"
        "assert 'sxtflow.plot._render' not in sys.modules and 'trimesh' not in sys.modules\n"
        "assert 'sxtflow.segment._features' not in sys.modules\n"
        "from sxtflow.plot import reconstruction_preview\n"
        "assert 'trimesh' not in sys.modules\n"
        "from sxtflow.plot import render\n"
        "assert 'trimesh' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_stage_imports_only_its_own_module():
    # every job imports sxtflow.stages: the simulate, reconstruct, predict and refine jobs
    # need neither pandas at import (tables) nor scikit-learn (models), nor xraydb's
    # SQLAlchemy when the materials' LACs at 517 eV are known (docs/performance.md, demo)
    import subprocess
    import sys

    code = (
        "import sys, sxtflow.stages as s\n"
        "from sxtflow.stages import run_simulate, run_predict, MODEL_VOXEL_TOLERANCE\n"
        "assert not {'pandas', 'sklearn', 'sxtflow.stages._analyse'} & set(sys.modules)\n"
        "from sxtflow.plausibility import reference_lac\n"
        "from sxtflow.sim import compartment_lac\n"
        "assert reference_lac(517.0)['ice'] == compartment_lac()['ice'] > 0\n"
        "assert 'xraydb' not in sys.modules\n"
        "assert s.run_mesh.__module__ == 'sxtflow.stages._analyse' and 'run_mesh' in dir(s)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_no_module_of_the_project_imports_an_alias():
    # the library, the rule scripts, the benchmarks and the tests use the new homes, so the
    # aliases' warnings reach only users' code
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    src = root / "src"
    files = [
        f
        for d in ("src", "workflow", "benchmarks", "tests")
        for f in sorted((root / d).rglob("*.py"))
        if f.name != "test_layout.py"
        and ".".join(f.relative_to(src).with_suffix("").parts if f.is_relative_to(src) else ())
        not in ALIASES
    ]
    assert len(files) > 50
    found = []
    for f in files:
        package = f.relative_to(src).parent.parts if f.is_relative_to(src) else ()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
                full = ".".join(p for p in (base, node.module or "") if p)
                names = [full, *(f"{full}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if set(names) & set(ALIASES):
                found.append(f"{f.relative_to(root)}:{node.lineno}")
    assert not found, f"imports of deprecated aliases: {found}"
