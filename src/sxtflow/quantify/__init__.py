"""Quantification: meshes of the segmented objects (and, as they move here, morphometry,
relations, chromatin and surface measures).

Modules: :mod:`._mesh` (marching cubes, Taubin smoothing, GLB/PLY scenes). Submodules load on
first use (``lazy_loader``), so a rule imports only what it calls. The public names are these:
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__,
    submod_attrs={
        "_mesh": ["mask_mesh", "object_meshes", "class_meshes", "write_scene", "write_ply"],
    },
)
