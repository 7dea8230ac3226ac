"""Optional reconstruction backends: astra-toolbox and tomopy, when importable."""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..progress import progress
from ._projector import _circle_grid

log = logging.getLogger("sxtflow")


def _tomopy_recon(lines, theta, center, algorithm, filter_name, iterations):
    """Reconstruct with tomopy (optional dependency, not tested here).

    tomopy measures the centre from pixel edges, so it receives ``center + 0.5``.
    tomopy's output grid is centred at ``(cols − 1) / 2``, so for even ``cols`` the
    volume may differ from the built-in one by half a voxel; orientation follows tomopy.
    """
    try:
        import tomopy
    except ImportError as exc:
        raise ImportError(
            "backend='tomopy' needs tomopy (conda install -c conda-forge tomopy)"
        ) from exc
    names = {
        "ramp": "ramlak",
        "shepp-logan": "shepp",
        "cosine": "cosine",
        "hamming": "hamming",
        "hann": "hann",
    }
    kwargs = {"center": center + 0.5}
    if algorithm == "fbp":
        kwargs.update(algorithm="gridrec", filter_name=names[filter_name])
    else:
        kwargs.update(algorithm="sirt", num_iter=int(iterations))
    rec = tomopy.recon(np.ascontiguousarray(lines, dtype=np.float32), theta, **kwargs)
    rec = tomopy.circ_mask(rec, axis=0, ratio=1.0)
    return np.asarray(rec, dtype=np.float32)


def astra_available() -> bool:
    """True when astra-toolbox is importable (optional ``astra`` backend)."""
    try:
        import astra  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA runtime
        return False
    return True


def _astra_recon(lines, theta, center, algorithm, filter_name, iterations):
    """Reconstruct slice by slice with astra-toolbox's CPU FBP/SIRT (optional, GPLv3).

    astra's CPU algorithms take only plain ``parallel`` geometry with the axis at the
    detector's geometric middle ``(cols − 1) / 2``, so each sinogram is moved by
    ``(cols − 1) / 2 − center`` (cubic spline); astra's volume window is offset by half
    a voxel for even ``cols`` so that voxel ``cols // 2`` sits on the axis, as here,
    and its y axis points up, as in :func:`skimage.transform.iradon`. Output: (rows,
    cols, cols), same orientation and units (per pixel) as :func:`fbp`.
    """
    try:
        import astra
    except ImportError as exc:
        raise ImportError(
            "backend='astra' needs astra-toolbox (pip install astra-toolbox; GPLv3)"
        ) from exc
    names = {
        "ramp": "ram-lak",
        "shepp-logan": "shepp-logan",
        "cosine": "cosine",
        "hamming": "hamming",
        "hann": "hann",
    }
    n_ang, n_rows, n = lines.shape
    d = n // 2 - (n - 1) / 2
    vg = astra.create_vol_geom(n, n, -n / 2 - d, n / 2 - d, -n / 2 + d, n / 2 + d)
    pg = astra.create_proj_geom("parallel", 1.0, n, np.asarray(theta, dtype=float))
    pid = astra.create_projector("linear", pg, vg)
    shift = (n - 1) / 2 - float(center)
    out = np.zeros((n_rows, n, n), dtype=np.float32)
    mask = _circle_grid(n)[0]
    try:
        for r in progress(range(n_rows), n_rows, "astra"):
            sino = np.asarray(lines[:, r], dtype=np.float32)
            if abs(shift) > 1e-6:
                sino = ndimage.shift(sino, (0, shift), order=3, mode="constant")
            sid = astra.data2d.create("-sino", pg, sino)
            rid = astra.data2d.create("-vol", vg, 0)
            if algorithm == "fbp":
                cfg = astra.astra_dict("FBP")
                cfg["option"] = {"FilterType": names[filter_name]}
            else:
                cfg = astra.astra_dict("SIRT")
                cfg["option"] = {"MinConstraint": 0.0}
            cfg["ProjectorId"] = pid
            cfg["ProjectionDataId"] = sid
            cfg["ReconstructionDataId"] = rid
            aid = astra.algorithm.create(cfg)
            astra.algorithm.run(aid, int(iterations) if algorithm == "sirt" else 1)
            out[r] = np.where(mask, astra.data2d.get(rid), 0.0)
            astra.algorithm.delete(aid)
            astra.data2d.delete([sid, rid])
    finally:
        astra.projector.delete(pid)
    return out


BACKENDS = ("builtin", "astra", "tomopy")


def available_backends() -> list[str]:
    """Backends usable here: always ``builtin``; ``astra``/``tomopy`` when importable."""
    out = ["builtin"]
    if astra_available():
        out.append("astra")
    try:
        import tomopy  # noqa: F401

        out.append("tomopy")
    except Exception:
        pass
    return out
