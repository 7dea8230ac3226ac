"""Stage reconstruct: raw projections (or a tomogram) to a calibrated LAC tomogram, its QC
record and preview.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import io
from ..io import InputError, Volume
from ._common import _REC, PathLike, _named, log


def run_reconstruct(
    raw: PathLike,
    out_tomogram: PathLike,
    out_qc: PathLike | None = None,
    out_preview: PathLike | None = None,
    *,
    kind: str = "projections",
    voxel_nm: float | None = None,
    algorithm: str = _REC["algorithm"],
    filter: str = _REC["filter"],  # noqa: A002 - the config key's name
    center: str | float = _REC["center"],
    iterations: int = _REC["iterations"],
    backend: str = _REC["backend"],
    stripe: bool = _REC["stripe"],
    align: bool = _REC["align"],
    binning: int = _REC["binning"],
    crop_rows: Sequence[int] | None = _REC["crop_rows"],
    crop_cols: Sequence[int] | None = _REC["crop_cols"],
    tv_weight: float = _REC["tv_weight"],
    resample_to_nm: float | None = _REC["resample_to_nm"],
    energy_ev: float = _REC["energy_ev"],
) -> Volume:
    """Projections → calibrated LAC tomogram (µm⁻¹); a tomogram input is checked and copied.

    ``voxel_nm`` (nm, the sample sheet's) wins over the file's pixel/voxel size (with a
    warning when they differ by more than 1 %); NaN or None means "from the file", and a file
    without one (TIFF, unitless AmiraMesh, MRC with 0 or 1 Å) is then an error.
    ``resample_to_nm`` puts the tomogram on a grid of that voxel size (anti-aliased,
    :func:`sxtflow.resample.resample_volume`; ``meta["resampled_from"]``). The QC JSON and
    preview warn when the ice or cell LAC is implausible for ``energy_ev`` (the file's energy
    when it records one; :func:`sxtflow.plausibility.lac_plausibility`).
    """
    from .. import recon
    from ..plausibility import lac_plausibility
    from ..plot import reconstruction_preview

    if voxel_nm is not None and not np.isfinite(voxel_nm):
        voxel_nm = None
    sinogram = None
    if kind == "tomogram":
        vol = io.read_volume(raw, voxel_nm)
        io.check_lac(vol.data, raw)
        if vol.data.dtype.kind != "f":
            vol = Volume(vol.data.astype(np.float32), vol.voxel_nm, vol.meta)
        vol.meta.setdefault("unit", "1/um")
        vol.meta["ice_lac_per_um"] = float(recon.ice_lac(vol.data))
    else:
        proj = io.read_projections(raw, pixel_nm=voxel_nm)
        if proj.pixel_nm is None:
            raise InputError(
                raw, "no pixel size in the file; give it in the sample sheet's voxel_nm column"
            )
        vol = _named(raw, recon.reconstruct)(
            proj,
            algorithm=algorithm,
            center=center,
            backend=backend,
            filter_name=filter,
            iterations=iterations,
            stripe=stripe,
            align=align,
            binning=binning,
            crop_rows=crop_rows,
            crop_cols=crop_cols,
            tv_weight=tv_weight,
        )
        vol.meta["field_of_view"] = "cylinder"  # parallel beam: the inscribed cylinder
        sinogram = proj.data[:, proj.data.shape[1] // 2, :]
        if "shifts_px" in proj.meta:
            vol.meta["true_shifts_rms_px"] = float(
                np.sqrt(np.mean(np.square(proj.meta["shifts_px"])))
            )
        if "energy_eV" in proj.meta:
            energy_ev = float(proj.meta["energy_eV"])
    if resample_to_nm and not np.allclose(vol.voxel_nm, resample_to_nm, rtol=1e-3):
        from ..resample import resample_volume

        log.info("resampling %s nm voxels to %s nm", vol.voxel_nm, resample_to_nm)
        vol = resample_volume(vol, resample_to_nm)
        vol.meta["ice_lac_per_um"] = float(recon.ice_lac(vol.data))
    check = lac_plausibility(vol, energy_ev)
    vol.meta["cell_lac_per_um"] = check["cell_lac_per_um"]
    vol.meta["energy_ev"] = float(energy_ev)
    vol.meta["qc_warnings"] = check["warnings"]
    for line in check["warnings"]:
        log.warning("%s: %s", raw, line)
    io.write_volume(out_tomogram, vol)
    if out_qc:
        io.write_json(
            out_qc,
            {
                "input": str(raw),
                "kind": kind,
                "voxel_nm": vol.voxel_nm,
                "plausible_lac_per_um": check["ranges"],
                **vol.meta,
            },
        )
    if out_preview:
        reconstruction_preview(vol, out_preview, sinogram=sinogram)
    return vol
