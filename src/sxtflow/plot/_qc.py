"""Quality-control figures of the reconstruction, for the report."""

from __future__ import annotations

import os

import numpy as np

from ..core import Volume
from ..io import atomic_path


def reconstruction_preview(
    volume: Volume, path: str | os.PathLike, *, sinogram: np.ndarray | None = None
) -> None:
    """Write a PNG: the central virtual slice (LAC, µm⁻¹, with a µm scale), when given the
    sinogram (angles × columns) of the central detector row with the rotation centre, and,
    when the tilt series was aligned (``meta["align_residual"]``), the re-projection
    residual per projection with the worst one marked.

    Parameters
    ----------
    volume : Volume
        Tomogram in µm⁻¹; ``meta`` may hold ``center_px`` and ``ice_lac_per_um``.
    path : path-like
        Output PNG (written atomically).
    sinogram : ndarray, shape (angles, columns), optional
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = volume.data[volume.data.shape[0] // 2]
    _, dy, dx = volume.spacing_um
    ny, nx = data.shape
    lo, hi = np.percentile(data, [1, 99.5])
    resid = volume.meta.get("align_residual")
    ncols = 1 + (sinogram is not None) + (resid is not None)
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 4.4), squeeze=False)
    ax = axes[0, 0]
    im = ax.imshow(data, cmap="gray", vmin=lo, vmax=hi, extent=(0, nx * dx, ny * dy, 0))
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ice = volume.meta.get("ice_lac_per_um")
    title = "central slice"
    if ice is not None:
        title += f", ice {ice:.3f} µm⁻¹"
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="LAC (µm⁻¹)")
    warnings = volume.meta.get("qc_warnings") or []
    if warnings:
        ax.text(
            0.01, 0.01, "WARNING\n" + "\n".join(w.split(" at ")[0] for w in warnings),
            transform=ax.transAxes, color="tab:red", fontsize=8, va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "tab:red"},
        )  # fmt: skip
    if sinogram is not None:
        ax = axes[0, 1]
        ax.imshow(sinogram, cmap="gray", aspect="auto")
        center = volume.meta.get("center_px")
        if center is not None:
            ax.axvline(center, color="tab:red", lw=0.8, label=f"centre {center:.2f} px")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("detector column (px)")
        ax.set_ylabel("projection index")
        ax.set_title("sinogram, central row (counts)")
    if resid is not None:
        ax = axes[0, ncols - 1]
        resid = np.asarray(resid, dtype=float)
        ax.plot(np.arange(resid.size), resid, ".-", lw=0.6, ms=3)
        worst = int(np.argmax(resid))
        ax.plot([worst], [resid[worst]], "o", color="tab:red", label=f"worst: #{worst}")
        ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel("projection index")
        ax.set_ylabel("RMS re-projection misfit (line integral)")
        rms = volume.meta.get("align_shift_rms_px")
        ax.set_title(
            "alignment residual" + (f", RMS shift {rms:.2f} px" if rms is not None else "")
        )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def uncertainty_preview(
    uncertainty: Volume,
    labels: np.ndarray,
    path: str | os.PathLike,
    *,
    suggested_z: list[int] | None = None,
) -> None:
    """Write a PNG: the classifier's uncertainty (1 − probability margin, 0–1) on the central
    slice with the class boundaries, and the mean uncertainty per z-slice inside the cell with
    the slices suggested for one more annotation marked.

    Parameters
    ----------
    uncertainty : Volume
        ``(z, y, x)`` float32, 0 = certain, 1 = two classes tied.
    labels : ndarray, shape (z, y, x)
        Predicted class values (0 = no data, 1 = ice are outside the cell).
    path : path-like
        Output PNG (written atomically).
    suggested_z : list of int, optional
        z indices to mark.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = uncertainty.data
    z0 = data.shape[0] // 2
    dz, dy, dx = uncertainty.spacing_um
    ny, nx = data.shape[1:]
    inside = labels > 1
    per_slice = np.array(
        [float(data[z][inside[z]].mean()) if inside[z].any() else np.nan for z in range(len(data))]
    )
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    ax = axes[0]
    shown = np.where(labels[z0] > 0, data[z0], np.nan)  # no data outside the field of view
    im = ax.imshow(shown, cmap="magma", vmin=0, vmax=1, extent=(0, nx * dx, ny * dy, 0))
    values = np.unique(labels[z0])
    if values.size > 1:
        x = (np.arange(nx) + 0.5) * dx
        y = (np.arange(ny) + 0.5) * dy
        ax.contour(x, y, labels[z0], levels=values[:-1] + 0.5, colors="white", linewidths=0.4)
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(f"uncertainty, z = {z0 * dz:.2f} µm")
    fig.colorbar(im, ax=ax, label="1 − probability margin")
    ax = axes[1]
    ax.plot(np.arange(len(per_slice)) * dz, per_slice, color="tab:purple")
    for z in suggested_z or []:
        ax.axvline(z * dz, color="tab:orange", lw=0.8)
    ax.set_xlabel("z (µm)")
    ax.set_ylabel("mean uncertainty inside the cell")
    ax.set_title("per slice; orange: suggested for annotation")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
