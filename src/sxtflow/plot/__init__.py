"""Figures: reconstruction and uncertainty previews (``_qc``) and the compare stage's plots
(``_compare``). matplotlib is imported inside the functions, so importing this package is
cheap; every figure is written atomically (:func:`sxtflow.io.atomic_path`).
"""

from ._compare import (
    PROFILE_COLUMNS,
    plot_fractions,
    plot_lac_histograms,
    plot_measures,
    plot_radial_profiles,
)
from ._qc import reconstruction_preview, uncertainty_preview

__all__ = [
    "reconstruction_preview",
    "uncertainty_preview",
    "plot_measures",
    "plot_fractions",
    "plot_lac_histograms",
    "plot_radial_profiles",
    "PROFILE_COLUMNS",
]
