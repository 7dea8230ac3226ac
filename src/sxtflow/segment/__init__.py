"""Segmentation: voxel features, the classifier, refinement and scores against a truth.

Modules: :mod:`._features` (the feature spec, block-wise features), :mod:`._filters`
(Gaussian derivative kernels, 3×3 eigenvalues), :mod:`._feature_store` (sealed zarr feature
stores), :mod:`._evaluate` (Dice and IoU per class), :mod:`._train` (the classifier trained on sparse
annotations), :mod:`._outlines` (traced outlines filled before training), :mod:`._model` (skops model files and cards), :mod:`._predict` (block-wise
prediction with fused features), :mod:`._coarse` (its coarse-to-fine pass), :mod:`._wide` (wide Gaussian channels from a lattice),
:mod:`._uncertainty` (uncertainty, slices to annotate next), :mod:`._refine` (per-class clean-up,
instances), :mod:`._boundary` (surfaces placed where the blurred LAC puts them), :mod:`._grid` (annotations and truths read onto
their tomogram's grid). Submodules load on first use
(``lazy_loader``, as scikit-image does), so a rule imports only what it calls. The public
names are these:
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_features": [
            "FAMILIES",
            "FeatureSpec",
            "FAST_SPEC",
            "compute_features",
            "block_features",
            "BlockFeatures",
            "iter_blocks",
        ],
        "_filters": ["eigvalsh3", "gaussian_kernel"],
        "_feature_store": ["write_features", "open_features"],
        "_evaluate": ["dice_iou", "read_truth"],
        "_grid": ["read_labels_on_grid"],
        "_train": ["ESTIMATORS", "CLASS_WEIGHTS", "training_samples", "train"],
        "_outlines": ["fill_outlines"],
        "_model": ["save_model", "load_model", "deterministic_skops"],
        "_predict": ["predict", "predict_volume", "used_features", "subset_spec"],
        "_coarse": ["coarse_pass", "fine_cells"],
        "_wide": ["WideChannels", "wide_scales"],
        "_uncertainty": [
            "uncertainty",
            "slice_uncertainty",
            "class_slice_uncertainty",
            "suggest_slices",
        ],
        "_refine": ["refine_labels", "separate_instances", "DEFAULT_RULES", "mask_box"],
        "_boundary": ["snap_boundaries", "estimate_blur", "estimate_blur_axes"],
    },
)
