"""Figures: reconstruction and uncertainty previews (``_qc``), the compare stage's plots
(``_compare``) and renders of segmentations (``_render``: 3D views of meshes, orthogonal
slice panels). Submodules load on first use (``lazy_loader``) and matplotlib inside the
functions, so importing this package is cheap and a rule imports only what it draws; every
figure is written atomically (:func:`sxtflow.io.atomic_path`). The public names are these:
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_qc": ["reconstruction_preview", "uncertainty_preview"],
        "_compare": [
            "plot_measures",
            "plot_fractions",
            "plot_lac_histograms",
            "plot_radial_profiles",
            "PROFILE_COLUMNS",
        ],
        "_render": ["render", "slice_panel", "decimate_for_display"],
    },
)
