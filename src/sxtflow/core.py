"""The types every stage shares, the input error and the checks of values and units.

* :class:`Volume`: a ``(z, y, x)`` array with its voxel size ``voxel_nm`` (nm) and metadata;
* :class:`Projections`: a tilt series ``(angles, rows, columns)``, angles in radians, pixel
  size in nm, with its flats and darks;
* :class:`InputError`: bad input, naming the file and the problem (the CLI prints it as one
  line and exits 2; a rule's log ends with it);
* the field of view of a reconstruction (:func:`cylinder_mask`, :func:`field_of_view`).

Nothing here touches files; :mod:`sxtflow.io` reads and writes these types (and re-exports
them, so ``from sxtflow.io import Volume`` keeps working).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np


class InputError(ValueError):
    """Bad input: the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


def _voxel3(voxel_nm) -> tuple[float, float, float]:
    v = np.broadcast_to(np.asarray(voxel_nm, dtype=float), (3,))
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"voxel size must be positive and finite, got {voxel_nm!r} nm")
    return tuple(float(x) for x in v)


def as_spacing_um(spacing_um) -> np.ndarray:
    """Voxel size ``(z, y, x)`` in µm as a float array of 3 (a scalar means isotropic).

    Raises ``ValueError`` unless it is 1 or 3 positive finite numbers.
    """
    s = np.asarray(spacing_um, dtype=float).reshape(-1)
    if s.size == 1:
        s = np.repeat(s, 3)
    if s.size != 3 or np.any(~np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"spacing_um must be 3 positive floats (z, y, x) µm, got {spacing_um!r}")
    return s


@dataclass
class Volume:
    """A 3D array with its voxel size.

    Attributes
    ----------
    data : ndarray, shape (z, y, x)
    voxel_nm : tuple of 3 floats
        Voxel size along (z, y, x) in nanometres.
    meta : dict
        Free-form JSON-serialisable metadata (e.g. ``{"unit": "1/um", "ice_lac_per_um": 0.1}``).
    """

    data: np.ndarray
    voxel_nm: tuple[float, float, float]
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(f"a volume must be 3D (z, y, x), got shape {self.data.shape}")
        self.voxel_nm = _voxel3(self.voxel_nm)

    @property
    def spacing_um(self) -> tuple[float, float, float]:
        """Voxel size along (z, y, x) in micrometres."""
        return tuple(v / 1000.0 for v in self.voxel_nm)


@dataclass
class Projections:
    """A tilt series with everything needed to reconstruct it.

    Attributes
    ----------
    data : ndarray, shape (angles, rows, columns)
        Raw intensities (counts) or, when ``meta["normalized"]`` is true, transmission.
    theta : ndarray, shape (angles,)
        Projection angles in radians.
    flats, darks : ndarray, shape (n, rows, columns) or None
        Flat (open beam) and dark fields, in counts.
    pixel_nm : float
        Detector pixel size in nanometres (at the sample).
    meta : dict
        Extra metadata, e.g. the simulator's true shifts ``"shifts_px"``.
    """

    data: np.ndarray
    theta: np.ndarray
    flats: np.ndarray | None = None
    darks: np.ndarray | None = None
    pixel_nm: float | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 3:
            raise ValueError(
                f"projections must be 3D (angles, rows, columns), got {self.data.shape}"
            )
        self.theta = np.asarray(self.theta, dtype=float).ravel()
        if self.theta.size != self.data.shape[0]:
            raise ValueError(
                f"{self.theta.size} angles for {self.data.shape[0]} projections: counts must match"
            )
        for name in ("flats", "darks"):
            arr = getattr(self, name)
            if arr is not None:
                arr = np.asarray(arr)
                if arr.ndim == 2:
                    arr = arr[None]
                if arr.shape[1:] != self.data.shape[1:]:
                    raise ValueError(
                        f"{name} have shape {arr.shape[1:]} but projections {self.data.shape[1:]}"
                    )
                setattr(self, name, arr)


def check_finite(data: np.ndarray, path=None, what: str = "data") -> None:
    """Raise :class:`InputError` if ``data`` holds NaN or infinite values."""
    if data.dtype.kind == "f":
        bad = ~np.isfinite(data)
        n = int(bad.sum())
        if n:
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(path, f"{what} contains {n} NaN/inf values (first at index {idx})")


#: Physically possible linear absorption coefficients in µm⁻¹. The densest elements absorb
#: about 30 µm⁻¹ anywhere between 250 and 1000 eV (osmium, iridium, tungsten; Henke tables via
#: xraydb); cells absorb 0.1–1.5 µm⁻¹ in the water window. The bounds leave room for
#: reconstruction noise and ringing (negative values included). Values beyond them are not LAC
#: in µm⁻¹: raw counts, another unit (cm⁻¹ is 10⁴ × larger), or a corrupt file.
LAC_RANGE_PER_UM = (-100.0, 100.0)


def check_lac(data: np.ndarray, path=None) -> None:
    """Refuse a tomogram whose values are not finite LAC in µm⁻¹ (:data:`LAC_RANGE_PER_UM`).

    Raises
    ------
    InputError
        Naming ``path``, the offending range and what to do.
    """
    check_finite(data, path, "tomogram")
    if data.size == 0:
        raise InputError(path, "tomogram is empty")
    lo, hi = float(np.min(data)), float(np.max(data))
    if lo < LAC_RANGE_PER_UM[0] or hi > LAC_RANGE_PER_UM[1]:
        raise InputError(
            path,
            f"values {lo:.4g}..{hi:.4g} are outside the physical LAC range "
            f"{LAC_RANGE_PER_UM[0]:g}..{LAC_RANGE_PER_UM[1]:g} µm⁻¹ (cells 0.1-1.5, the densest "
            "elements ~30): not LAC in µm⁻¹ (raw counts? another unit?); calibrate the "
            "tomogram to µm⁻¹ (ice ≈ 0.1) or give the projections",
        )


def _unit_scale(unit, default: str, path, what: str) -> float:
    """Factor to nanometres for a length unit string."""
    if isinstance(unit, bytes):
        unit = unit.decode()
    unit = str(unit or default).strip().lower().replace("micron", "um")
    table = {
        "nm": 1.0,
        "nanometer": 1.0,
        "nanometre": 1.0,
        "um": 1e3,
        "µm": 1e3,
        "μm": 1e3,
        "micrometer": 1e3,
        "micrometre": 1e3,
        "mm": 1e6,
        "m": 1e9,
        "meter": 1e9,
        "metre": 1e9,
        "a": 0.1,
        "å": 0.1,
        "angstrom": 0.1,
    }
    if unit not in table:
        raise InputError(path, f"unknown {what} unit {unit!r}")
    return table[unit]


def cylinder_mask(shape) -> np.ndarray:
    """(y, x) bool mask of the cylinder inscribed in the x-y square of a ``(z, y, x)`` shape.

    The field of view of a parallel-beam reconstruction (docs/architecture.md, geometry):
    voxel ``(y, x)`` is inside when its distance from ``(ny // 2, nx // 2)`` is at most
    ``min(ny, nx) // 2`` voxels.

    Examples
    --------
    >>> cylinder_mask((1, 5, 5)).astype(int)[2]
    array([1, 1, 1, 1, 1])
    >>> int(cylinder_mask((1, 5, 5)).sum())
    13
    """
    ny, nx = shape[1:]
    y = np.arange(ny) - ny // 2
    x = np.arange(nx) - nx // 2
    return (y[:, None] ** 2 + x[None, :] ** 2) <= (min(ny, nx) // 2) ** 2


def field_of_view(vol: Volume) -> np.ndarray | None:
    """Voxels with data: a reconstruction's field of view (the cylinder inscribed in the x-y
    square, ``meta["field_of_view"] == "cylinder"``) as a read-only ``(z, y, x)`` bool view,
    else None (every voxel)."""
    if vol.meta.get("field_of_view") != "cylinder":
        return None
    return np.broadcast_to(cylinder_mask(vol.data.shape)[None], vol.data.shape)
