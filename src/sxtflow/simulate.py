"""Deprecated alias of :mod:`sxtflow.sim`, kept for one release.

``sxtflow.simulate`` was split into the :mod:`sxtflow.sim` package (materials, shapes, cells,
projections, annotate). Import from ``sxtflow.sim`` instead; every public name of the old
module is re-exported here unchanged.
"""

from ._deprecated import moved
from .sim import (  # noqa: F401  (public names of the old module outside its __all__)
    ANNOTATION_MODES,
    COMPOSITIONS,
    CONDITION_KEYS,
    GLUCAN,
    ICE,
    LIPID,
    ORGANELLES,
    PROTEIN,
    annotate,
    compartment_lac,
    degrade,
    material_lac,
    project,
    simulate_cell,
    tilt_angles,
)

__all__ = [
    "COMPOSITIONS",
    "CONDITION_KEYS",
    "material_lac",
    "compartment_lac",
    "simulate_cell",
    "tilt_angles",
    "project",
    "degrade",
    "annotate",
    "ANNOTATION_MODES",
]

moved("sxtflow.simulate", "sxtflow.sim")
