"""Readers and writers of every file format the pipeline uses.

Conventions
-----------
* Volumes are ``(z, y, x)`` arrays; the voxel size travels with them as ``voxel_nm``,
  a ``(z, y, x)`` tuple in nanometres (MRC headers store Ångström; we convert).
* Projections are ``(angles, rows, columns)``; angles in radians; pixel size in nm.
* Every writer is atomic (:func:`atomic_path`): it writes a temporary file beside the target
  and renames it, so an interrupted job never leaves a half-written file that looks complete.
* Every reader validates and raises :class:`InputError` naming the file and the problem.

Modules: :mod:`._volumes` (MRC, TIFF, HDF5 volumes; format sniffing), :mod:`._amira`
(AmiraMesh), :mod:`._projections` (tilt series), :mod:`._zeiss` (TXRM/XRM), :mod:`._atomic`
(atomic outputs, scratch directories named as their temporaries), :mod:`._stores` (zarr stores and their integrity records), :mod:`._tables`
(TSV and JSON). The shared types live in :mod:`sxtflow.core` and are re-exported here, so
``from sxtflow.io import Volume`` keeps working. The public names are these:
"""

from ..core import (
    LAC_RANGE_PER_UM,
    InputError,
    Projections,
    Volume,
    as_spacing_um,
    check_finite,
    check_lac,
)
from ._amira import read_amira, write_amira
from ._atomic import OutputError, atomic_path, remove_stale_temporaries, scratch_directory
from ._projections import MAX_NONPOSITIVE_FRACTION, read_angles, read_projections, write_projections
from ._stores import INTEGRITY_RECORD, create_zarr_array, seal_store, store_token, verify_store
from ._tables import read_json, read_table, read_text_table, write_json, write_table
from ._volumes import VOXEL_MISMATCH_WARN, read_meta, read_volume, write_volume

__all__ = [
    "InputError",
    "OutputError",
    "remove_stale_temporaries",
    "LAC_RANGE_PER_UM",
    "check_lac",
    "as_spacing_um",
    "Volume",
    "Projections",
    "atomic_path",
    "scratch_directory",
    "read_volume",
    "read_amira",
    "write_amira",
    "read_meta",
    "create_zarr_array",
    "INTEGRITY_RECORD",
    "seal_store",
    "verify_store",
    "store_token",
    "write_volume",
    "read_projections",
    "read_angles",
    "MAX_NONPOSITIVE_FRACTION",
    "VOXEL_MISMATCH_WARN",
    "write_projections",
    "read_table",
    "read_text_table",
    "write_table",
    "write_json",
    "read_json",
    "check_finite",
]
