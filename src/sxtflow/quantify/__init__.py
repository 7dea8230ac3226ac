"""Quantification of segmented cells: meshes, morphometry, relations, chromatin, protrusions.

Modules: :mod:`._mesh` (marching cubes, Taubin smoothing, GLB/PLY scenes), :mod:`._measure`
(instances, per-object morphometry and LAC, per-cell summary), :mod:`._relations`
(surface-to-surface distances, contacts, radial position), :mod:`._chromatin` (hetero- and
euchromatin by LAC, radial profiles), :mod:`._protrusions` (cell body and protrusions,
roughness). Submodules load on
first use (``lazy_loader``), so a rule imports only what it calls. The public names are these:
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_mesh": ["mask_mesh", "object_meshes", "class_meshes", "write_scene", "write_ply"],
        "_measure": [
            "instances",
            "measure_objects",
            "cell_summary",
            "cell_mask",
            "OBJECT_COLUMNS",
            "CELL_CLASS",
        ],
        "_relations": ["surface_voxels", "object_relations", "RELATION_BASE_COLUMNS"],
        "_chromatin": ["split_chromatin", "chromatin_threshold", "chromatin_box", "radial_profile"],
        "_protrusions": ["cell_body", "protrusions", "surface_summary", "PROTRUSION_COLUMNS"],
    },
)
