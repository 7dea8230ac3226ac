"""Simulated soft X-ray tomography of whole cells, with ground truth.

Everything here is deterministic under a seed, so tests and the demo pipeline can
compare what the pipeline measures with what the simulator put in.

* :func:`material_lac` and :func:`compartment_lac` give linear absorption coefficients
  (LAC, µm⁻¹) from chemical composition (``xraydb`` photoabsorption, Henke tables).
* :func:`simulate_cell` builds a LAC volume and a fine truth label volume of a yeast cell
  or a crawling lymphocyte inside a cylinder of ice.
* :func:`tilt_angles` and :func:`project` make a raw tilt series (counts, flats, darks)
  with Poisson noise, zone-plate blur and per-projection misalignment.
* :func:`annotate` is a "virtual annotator" painting sparse scribbles like a person in napari.

Conventions: the geometry of docs/architecture.md (volumes ``(z, y, x)``, rotation axis
``z``, detector rows ``z`` and columns ``x``; the sample inside the cylinder inscribed in the
``x``–``y`` square, outside it vacuum: LAC 0, label 0).

Modules: :mod:`._materials` (LAC from composition), :mod:`._shapes` (the cell's grid, painter
and shapes), :mod:`._cells` (yeast and lymphocyte builders, conditions), :mod:`._projections`
(tilt series, degradation), :mod:`._annotate` (the virtual annotator). Submodules load on
first use (``lazy_loader``). The public names are these:
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_materials": ["PROTEIN", "LIPID", "ICE", "GLUCAN", "ORGANELLES", "COMPOSITIONS",
                       "material_lac", "compartment_lac"],
        "_cells": ["CONDITION_KEYS", "simulate_cell"],
        "_projections": ["tilt_angles", "project", "degrade"],
        "_annotate": ["ANNOTATION_MODES", "annotate"],
    },
)  # fmt: skip
