"""Zeiss/Xradia ``.txrm``/``.xrm`` tilt series (OLE2 compound files) through ``txrm2tiff``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core import InputError


def _read_txrm(path: Path, pixel_nm, have_angles: bool):
    """Zeiss/Xradia ``.txrm``/``.xrm`` (OLE2 compound file) through ``txrm2tiff``.

    * images: ``ImageData<k>/Image<n>`` (uint16 or float32, ``ImageInfo/DataType``),
      returned as float32 and flipped along the rows like ``txrm2tiff``'s ``get_output``
      (its TIFFs, and XRM Data Explorer, show them that way), so a file read here and its
      ``txrm2tiff`` conversion give the same tomogram;
    * angles: ``ImageInfo/Angles`` (degrees, one per image taken) → radians;
    * pixel size: ``ImageInfo/PixelSize`` (µm) → nm;
    * flat: ``ReferenceData/Image`` when present (flipped the same way). Its exposure
      (``ReferenceData/ExpTime`` or ``ReferenceData/ImageInfo/ExpTime``) is matched to the
      projections' (``ImageInfo/ExpTimes``) as ``txrm2tiff`` does when it applies a
      reference: with one exposure for all projections the flat is scaled by
      ``exposure / reference exposure`` (``meta["flat_exposure_scale"]``); with several,
      each projection is scaled to the reference exposure (``meta["exposure_scaled"]``).
    * no darks (Xradia files hold none); mosaics are refused.
    """
    try:
        import olefile
        import txrm2tiff
    except ImportError as exc:
        raise InputError(
            path,
            f"reading Zeiss TXRM/XRM files needs the 'txrm2tiff' package ({exc}); "
            "install it with: pip install txrm2tiff (or conda install -c conda-forge txrm2tiff)",
        ) from exc

    with open(path, "rb") as fh:
        # olefile first: its errors name the OLE problem (txrm2tiff's can hide it)
        with olefile.OleFileIO(fh) as ole:
            if not ole.exists("ImageInfo"):
                raise InputError(
                    path, "OLE2 file without an 'ImageInfo' storage: not a Zeiss/Xradia TXRM/XRM"
                )
            missing = [k for k in ("Version", "ImageInfo/ImagesTaken") if not ole.exists(k)]
            if missing:
                raise InputError(path, f"Zeiss TXRM/XRM file without the stream(s) {missing}")
            file_version = np.frombuffer(ole.openstream("Version").read()[:4], "<f4")
        fh.seek(0)
        try:
            txrm = txrm2tiff.open_txrm(fh, load_images=False, load_reference=False, strict=True)
        except Exception as exc:
            raise InputError(
                path,
                f"txrm2tiff {txrm2tiff.__version__} cannot open this Xradia file "
                f"(Version stream {file_version.tolist()}; it reads versions 3 and 5): {exc}",
            ) from exc
        try:
            parts = _txrm_parts(txrm, path, pixel_nm, have_angles, txrm2tiff.__version__)
            issues = [str(msg) for _, msg in (getattr(txrm.ole, "parsing_issues", []) or [])]
        finally:
            txrm.close()
    if issues:  # tolerated by olefile and nothing came out short: keep, but say so
        parts[-1]["ole_defects"] = issues
        logging.getLogger("sxtflow").warning("%s: OLE defects %s", path, "; ".join(issues))
    return parts


def _txrm_parts(txrm, path: Path, pixel_nm, have_angles: bool, version: str):
    def issues() -> str:
        found = [str(msg) for _, msg in (getattr(txrm.ole, "parsing_issues", []) or [])]
        return f"; OLE defects: {'; '.join(found)}" if found else ""

    info = txrm.image_info
    n_taken = int(info["ImagesTaken"][0])
    if n_taken < 1:
        raise InputError(path, "ImageInfo/ImagesTaken is 0: the file holds no images")
    try:
        mosaic = bool(txrm.is_mosaic)
    except Exception:  # version 5 files without the mosaic streams are not mosaics
        mosaic = False
    if mosaic:
        raise InputError(path, "Zeiss mosaic (stitched) image: not a tilt series")
    dtype = txrm.image_dtype
    if dtype is None:
        raise InputError(path, "ImageInfo/DataType missing or unknown: cannot decode the images")
    images = txrm.get_images()
    rows, cols = (int(info["ImageHeight"][0]), int(info["ImageWidth"][0]))
    if images is None or images.ndim != 3 or images.shape[0] != n_taken:
        got = 0 if images is None or images.ndim != 3 else images.shape[0]
        raise InputError(
            path,
            f"only {got} of {n_taken} images (ImageInfo/ImagesTaken) could be read as "
            f"{rows}×{cols} {np.dtype(dtype.value).name}: truncated or corrupt file{issues()}",
        )
    data = np.ascontiguousarray(np.flip(images, axis=1), dtype=np.float32)

    theta = np.zeros(n_taken)
    if not have_angles:
        if "Angles" not in info:
            raise InputError(path, "no 'ImageInfo/Angles' stream: projection angles unknown")
        deg = np.asarray(info["Angles"], dtype=float).ravel()
        if deg.size != n_taken:
            planned = int(info.get("NoOfImages", [n_taken])[0])
            note = f" (an interrupted scan: {planned} planned)" if planned != n_taken else ""
            raise InputError(
                path, f"{deg.size} angles in ImageInfo/Angles for {n_taken} images{note}"
            )
        theta = np.deg2rad(deg)

    meta: dict = {
        "format": "txrm",
        "reader": f"txrm2tiff {version}",
        "xradia_version": float(txrm.version),
        "source_dtype": np.dtype(dtype.value).name,
        "row_order": "flipped as txrm2tiff/XRM Data Explorer show it",
    }
    if pixel_nm is None and info.get("PixelSize"):
        # shortest decimal of the stored float32 (0.03 µm → 30 nm, not 29.9999993)
        pix_um = float(np.format_float_positional(np.float32(info["PixelSize"][0]), unique=True))
        if np.isfinite(pix_um) and pix_um > 0:
            pixel_nm = pix_um * 1e3
    if info.get("Energy") and np.isfinite(info["Energy"][0]) and info["Energy"][0] > 0:
        meta["energy_eV"] = float(info["Energy"][0])
    exposures = np.asarray(info.get("ExpTimes") or info.get("ExpTime") or [], dtype=float)
    if exposures.size >= n_taken:
        exposures = exposures[:n_taken]
        uniform = bool(np.all(exposures == exposures[0]))
        meta["exposure_s"] = float(exposures[0]) if uniform else exposures.tolist()
    else:
        exposures, uniform = None, True

    flats = None
    if txrm.has_reference:
        ref = txrm.get_reference()
        if ref is None or ref.shape != (rows, cols):
            shape = None if ref is None else ref.shape
            raise InputError(
                path,
                f"ReferenceData/Image could not be read as {rows}×{cols} (got {shape}){issues()}",
            )
        flats = np.ascontiguousarray(np.flip(ref, axis=0), dtype=np.float32)[None]
        ref_exp = txrm.reference_exposure
        if exposures is not None and ref_exp and np.isfinite(ref_exp) and ref_exp > 0:
            meta["reference_exposure_s"] = float(ref_exp)
            if uniform and exposures[0] != ref_exp:
                scale = float(exposures[0]) / float(ref_exp)
                flats = flats * np.float32(scale)
                meta["flat_exposure_scale"] = scale
            elif not uniform and np.all(exposures > 0):
                data *= (float(ref_exp) / exposures).astype(np.float32)[:, None, None]
                meta["exposure_scaled"] = "projections scaled to the reference exposure"
    return data, theta, flats, None, pixel_nm, meta
