"""One function per pipeline stage, from files to files.

The command line (``sxtflow <stage>``) and the Snakemake scripts call these and nothing else,
so a reader goes rule → script → one function here → the science module. Every function
reads its inputs through :mod:`sxtflow.io` (validated, clear errors) and writes atomically.

Modules (private, one per rule family): ``_simulate``, ``_reconstruct``, ``_segment``
(features, train, predict, refine, evaluate), ``_analyse`` (mesh, measure, OME-Zarr export),
``_compare``, and ``_common`` (the options' defaults, blocks, label tables). The public names
are these:
"""

from ._analyse import run_export_ome_zarr, run_measure, run_mesh
from ._common import MODEL_VOXEL_TOLERANCE, check_block
from ._compare import run_compare, stack_sample_tables
from ._reconstruct import run_reconstruct
from ._segment import (
    check_model_voxel,
    feature_spec,
    run_evaluate,
    run_features,
    run_predict,
    run_refine,
    run_train,
    run_train_tomograms,
)
from ._simulate import run_annotate, run_simulate

__all__ = [
    "MODEL_VOXEL_TOLERANCE",
    "check_block",
    "run_simulate",
    "run_annotate",
    "run_reconstruct",
    "feature_spec",
    "run_features",
    "run_train",
    "run_train_tomograms",
    "check_model_voxel",
    "run_predict",
    "run_refine",
    "run_evaluate",
    "run_mesh",
    "run_measure",
    "run_export_ome_zarr",
    "run_compare",
    "stack_sample_tables",
]

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
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
