"""Deprecated alias: meshes moved to :mod:`sxtflow.quantify`, their pictures to
:mod:`sxtflow.plot`; kept for one release. Every public name of the old module is
re-exported here unchanged.
"""

from .plot._render import decimate_for_display, render, slice_panel
from .quantify._mesh import (
    CONNECTIVITY_26,  # noqa: F401  (measure, relations and surface read these until they move)
    _class_boxes,  # noqa: F401
    _mesh_crop,  # noqa: F401
    class_meshes,
    mask_mesh,
    object_meshes,
    write_ply,
    write_scene,
)

__all__ = [
    "mask_mesh",
    "object_meshes",
    "class_meshes",
    "write_scene",
    "write_ply",
    "decimate_for_display",
    "render",
    "slice_panel",
]
