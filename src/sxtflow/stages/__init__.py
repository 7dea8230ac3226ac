"""One function per pipeline stage, from files to files.

The command line (``sxtflow <stage>``) and the Snakemake scripts call these and nothing else,
so a reader goes rule → script → one function here → the science module. Every function
reads its inputs through :mod:`sxtflow.io` (validated, clear errors) and writes atomically.

Modules (private, one per rule family): ``_simulate``, ``_reconstruct``, ``_segment``
(features, train, predict, refine, evaluate), ``_analyse`` (mesh, measure, OME-Zarr export),
``_compare``, and ``_common`` (the options' defaults, blocks, label tables). The public names
are these:
"""

import lazy_loader as _lazy

# Submodules load on first use (``lazy_loader``), so a rule's script imports only its own
# stage's module: pandas, scikit-learn or matplotlib cost a job 0.3-1.5 CPU-s each.
_stage_getattr, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_common": ["MODEL_VOXEL_TOLERANCE", "check_block"],
        "_simulate": ["run_simulate", "run_annotate"],
        "_reconstruct": ["run_reconstruct"],
        "_segment": ["feature_spec", "run_features", "run_train", "run_train_tomograms",
                     "check_model_voxel", "run_predict", "run_refine", "run_evaluate"],
        "_analyse": ["run_mesh", "run_measure", "run_chromatin", "run_export_ome_zarr"],
        "_compare": ["run_compare", "stack_sample_tables"],
    },
)  # fmt: skip

#: names that moved from here to the science (issue 16), still importable from here
_MOVED = {
    "cylinder_mask": ("core", "cylinder_mask"),
    "prediction_mask": ("core", "field_of_view"),
    "read_truth": ("segment", "read_truth"),
}


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        module, attr = _MOVED[name]
        return getattr(importlib.import_module(f"..{module}", __package__), attr)
    return _stage_getattr(name)
