"""Deprecated alias: meshes moved to :mod:`sxtflow.quantify`, their pictures to
:mod:`sxtflow.plot`; kept for one release. Every public name of the old module is
re-exported here unchanged.
"""

from ._deprecated import moved
from .plot._render import decimate_for_display, render, slice_panel
from .quantify._mesh import (
    CONNECTIVITY_26,  # noqa: F401  (a public name of the old module outside its __all__)
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

moved("sxtflow.mesh", "sxtflow.quantify and sxtflow.plot")
