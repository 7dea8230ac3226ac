"""Chromatin compaction inside nuclei: an objective LAC-based heterochromatin/euchromatin split.

Method
------
Each nucleus (26-connected component of the nucleus mask) is handled on its own bounding
box. Its LAC is pre-smoothed with a Gaussian *inside the nucleus only* (normalised
convolution: ``G(lac · m) / G(m)``, so the cytoplasm does not bleed into the envelope), which
is the light spatial regularisation. A threshold is then fitted to that nucleus's smoothed
values:

* ``method="gmm"``: a two-component Gaussian mixture with one shared variance
  (scikit-learn, ``covariance_type="tied"``, initialised from the two classes of Otsu's
  threshold, seeded); the threshold is the LAC between the two means where the dense
  component's posterior reaches ½. (Free variances let the dense component absorb the
  partial-volume tail and overestimated heterochromatin by up to 0.07 on simulated nuclei.)
* ``method="otsu"``: Otsu's threshold (scikit-image) of the smoothed values.

Voxels above the threshold are heterochromatin (label 6 of ``labels.tsv``), the others
euchromatin (label 4, "nucleus"). In the simulator nucleoli have the LAC of heterochromatin
and so are counted as dense; they are < 2 % of a lymphocyte's nuclear volume.

Table columns (one row per nucleus, units in the names)
-------------------------------------------------------
``nucleus_id`` (1…N, raster order), ``volume_um3``, ``heterochromatin_volume_um3``,
``heterochromatin_fraction`` and ``euchromatin_fraction`` (of the nuclear volume),
``lac_hetero_mean_per_um``, ``lac_eu_mean_per_um`` (means of the *unsmoothed* LAC),
``compaction_ratio`` (their ratio, > 1), ``threshold_lac_per_um``, ``ashman_d`` (Ashman's
D of the two classes of smoothed values, √2 |m1 − m2| / √(s1² + s2²); a split into two
classes always exists, but it only means something for a bimodal nucleus: one Gaussian cut
at its mean reads 2.65, simulated lymphocyte nuclei 4.0–4.3), ``method``;
``hetero_fraction_bin<i>`` for ``i = 0 … n_bins-1``: heterochromatin fraction of the voxels
whose normalised depth ``ρ = d / max(d)`` (``d`` = Euclidean distance to the nuclear
envelope, µm) lies in ``[i/n, (i+1)/n)``; bin 0 is the envelope, the last bin the core;
``n_domains`` (26-connected heterochromatin components of at least ``min_domain_um3``),
``domain_volume_mean_um3``, ``domain_volume_median_um3``, ``domain_volume_max_um3``,
``largest_domain_share`` (largest component / all heterochromatin, 1 = one connected
network), ``euler_number`` (of the heterochromatin, 26-connectivity,
:func:`skimage.measure.euler_number`: components − tunnels + cavities).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from ..core import as_spacing_um as _spacing3
from ..labels import default_labels
from ..segment._distance import distance_um
from ._measure import mask_box

_C26 = np.ones((3, 3, 3), dtype=bool)


def chromatin_threshold(values: np.ndarray, method: str = "gmm", seed: int = 0) -> float:
    """LAC threshold (µm⁻¹) separating dense from light chromatin in ``values``.

    Parameters
    ----------
    values : ndarray of float, shape (n,)
        LAC values (µm⁻¹) of one nucleus.
    method : {"gmm", "otsu"}
    seed : int
        Seed of the mixture fit.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> v = np.concatenate([rng.normal(0.26, 0.01, 700), rng.normal(0.35, 0.01, 300)])
    >>> 0.29 < chromatin_threshold(v) < 0.32
    True
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 4:
        raise ValueError(f"need at least 4 finite LAC values to split chromatin, got {v.size}")
    if method == "otsu":
        from skimage.filters import threshold_otsu

        return float(threshold_otsu(v))
    if method != "gmm":
        raise ValueError(f"unknown method {method!r}; choose 'gmm' or 'otsu'")
    from skimage.filters import threshold_otsu
    from sklearn.mixture import GaussianMixture

    sub = v
    if v.size > 200_000:  # the fit needs no more; subsample deterministically
        sub = np.random.default_rng(seed).choice(v, 200_000, replace=False)
    t0 = float(threshold_otsu(sub))
    lo_part, hi_part = sub[sub <= t0], sub[sub > t0]
    if lo_part.size == 0 or hi_part.size == 0:
        return t0
    gm = GaussianMixture(
        2,
        covariance_type="tied",
        means_init=[[lo_part.mean()], [hi_part.mean()]],
        weights_init=[lo_part.size / sub.size, hi_part.size / sub.size],
        random_state=seed,
        reg_covar=1e-10,
    )
    gm.fit(sub[:, None])
    means = gm.means_.ravel()
    dense = int(np.argmax(means))
    grid = np.linspace(means.min(), means.max(), 2001)
    post = gm.predict_proba(grid[:, None])[:, dense]
    above = np.flatnonzero(post >= 0.5)
    return float(grid[above[0]]) if above.size else float(means.mean())


def _smooth_inside(lac: np.ndarray, mask: np.ndarray, sigma_vox: np.ndarray) -> np.ndarray:
    if np.all(sigma_vox <= 0):
        return lac
    m = mask.astype(np.float32)
    num = ndimage.gaussian_filter(np.where(mask, lac, 0).astype(np.float32), sigma_vox)
    den = ndimage.gaussian_filter(m, sigma_vox)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, num / np.maximum(den, 1e-6), 0)


def split_chromatin(
    lac: np.ndarray,
    nucleus_mask: np.ndarray,
    spacing_um,
    *,
    method: str = "gmm",
    smooth_sigma_um: float | None = None,
    n_bins: int = 5,
    min_domain_um3: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Split every nucleus into heterochromatin and euchromatin by its LAC.

    Parameters
    ----------
    lac : ndarray of float, shape (z, y, x)
        LAC in µm⁻¹.
    nucleus_mask : ndarray of bool, shape (z, y, x)
        The nuclei (every voxel of the nucleus class); each 26-connected component is
        fitted separately.
    spacing_um : float or sequence of 3 floats
        Voxel size (z, y, x) in µm.
    method : {"gmm", "otsu"}
        Threshold per nucleus (see the module docstring).
    smooth_sigma_um : float, optional
        Gaussian pre-smoothing inside the nucleus (µm); default 0.75 of the largest voxel
        (on simulated nuclei with noise SD 0.04 µm⁻¹, none read +0.17, 0.75 voxel ≤ 0.025
        off); 0 = none.
    n_bins : int
        Bins of normalised depth for the radial profile (envelope → core).
    min_domain_um3 : float, optional
        Smallest heterochromatin component counted as a dense domain; default 8 voxels.
    seed : int
        Seed of the mixture fit.

    Returns
    -------
    labels : ndarray of uint8, shape (z, y, x)
        6 (heterochromatin) and 4 (euchromatin, "nucleus") inside the nuclei, 0 elsewhere.
    table : pandas.DataFrame
        One row per nucleus; columns in the module docstring.
    """
    lac = np.asarray(lac)
    mask = np.asarray(nucleus_mask, dtype=bool)
    if lac.ndim != 3 or lac.shape != mask.shape:
        raise ValueError(f"lac {lac.shape} and nucleus_mask {mask.shape} must be equal 3D shapes")
    spacing = _spacing3(spacing_um)
    if n_bins < 1:
        raise ValueError(f"n_bins must be ≥ 1, got {n_bins}")
    sigma_um = _sigma_um(spacing, smooth_sigma_um)
    vox_um3 = float(np.prod(spacing))
    min_dom = 8 * vox_um3 if min_domain_um3 is None else float(min_domain_um3)
    table = default_labels()
    hetero_v, eu_v = table.value("heterochromatin"), table.value("nucleus")
    out = np.zeros(mask.shape, dtype=np.uint8)
    sigma_vox = sigma_um / spacing
    pad = _margin(sigma_vox)
    rows = []
    box = mask_box(mask)
    if box is None:
        return out, pd.DataFrame(rows, columns=_columns(n_bins)).astype(
            {"nucleus_id": int, "n_domains": int}
        )
    # the nuclei are labelled in their box grown by the crops' margin (int32 labels of
    # the whole volume would be 4 bytes per voxel)
    box = tuple(
        slice(max(b.start - pad, 0), min(b.stop + pad, dim))
        for b, dim in zip(box, mask.shape, strict=True)
    )
    origin = [b.start for b in box]
    comps, n = ndimage.label(mask[box], structure=_C26)
    for k, sl in enumerate(ndimage.find_objects(comps), start=1):
        if sl is None:
            continue
        big = tuple(
            slice(max(s.start + o - pad, 0), min(s.stop + o + pad, dim))
            for s, o, dim in zip(sl, origin, mask.shape, strict=True)
        )
        m = comps[tuple(slice(b.start - o, b.stop - o) for b, o in zip(big, origin, strict=True))]
        m = m == k
        raw = np.asarray(lac[big], dtype=np.float32)
        smooth = _smooth_inside(raw, m, sigma_vox)
        vals = smooth[m]
        if vals.size < 4:
            continue
        thr = chromatin_threshold(vals, method, seed)
        hc = m & (smooth > thr)
        out[big][m] = eu_v
        out[big][hc] = hetero_v
        row = _nucleus_row(k, m, hc, raw, spacing, thr, method, n_bins, min_dom)
        row["ashman_d"] = _ashman_d(vals, thr)
        rows.append(row)
    cols = _columns(n_bins)
    df = pd.DataFrame(rows, columns=cols)
    return out, df.astype({"nucleus_id": int, "n_domains": int})


def _sigma_um(spacing: np.ndarray, smooth_sigma_um: float | None) -> float:
    sigma_um = 0.75 * float(spacing.max()) if smooth_sigma_um is None else float(smooth_sigma_um)
    if sigma_um < 0:
        raise ValueError(f"smooth_sigma_um must be ≥ 0, got {smooth_sigma_um}")
    return sigma_um


def _margin(sigma_vox: np.ndarray) -> int:
    """Voxels of context around a nucleus: the pre-smoothing's reach, plus one."""
    return int(np.ceil(3 * sigma_vox.max())) + 1


def chromatin_box(
    nucleus_mask: np.ndarray, spacing_um, smooth_sigma_um: float | None = None, *, box=None
):
    """The box (tuple of slices) that :func:`split_chromatin` reads: the nuclei's bounding
    box grown by the pre-smoothing's margin, clipped to the volume; None without a nucleus.

    ``box`` (tuple of 3 slice), when given, is the nuclei's bounding box itself (e.g. the
    nucleus class's from :func:`scipy.ndimage.find_objects`): ``nucleus_mask`` is then read
    for its shape only (an array of that shape, or the shape as a tuple).

    ``split_chromatin(lac[box], nucleus_mask[box], ...)`` gives the same table as on the
    whole volume, so a caller can keep just these crops of the LAC volume.

    Examples
    --------
    >>> m = np.zeros((20, 20, 20), bool); m[8:12, 9:11, 5:6] = True
    >>> chromatin_box(m, 1.0)  # σ = 0.75 voxel: 4 voxels of margin
    (slice(4, 16, None), slice(5, 15, None), slice(1, 10, None))
    """
    spacing = _spacing3(spacing_um)
    if box is None:
        mask = np.asarray(nucleus_mask, dtype=bool)
        shape = mask.shape
        box = mask_box(mask)
    else:
        shape = tuple(getattr(nucleus_mask, "shape", nucleus_mask))
    if box is None:
        return None
    pad = _margin(_sigma_um(spacing, smooth_sigma_um) / spacing)
    return tuple(
        slice(max(b.start - pad, 0), min(b.stop + pad, dim))
        for b, dim in zip(box, shape, strict=True)
    )


def _columns(n_bins: int) -> list[str]:
    return [
        "nucleus_id",
        "volume_um3",
        "heterochromatin_volume_um3",
        "heterochromatin_fraction",
        "euchromatin_fraction",
        "lac_hetero_mean_per_um",
        "lac_eu_mean_per_um",
        "compaction_ratio",
        "threshold_lac_per_um",
        "ashman_d",
        "method",
        *[f"hetero_fraction_bin{i}" for i in range(n_bins)],
        "n_domains",
        "domain_volume_mean_um3",
        "domain_volume_median_um3",
        "domain_volume_max_um3",
        "largest_domain_share",
        "euler_number",
    ]


def _ashman_d(values: np.ndarray, thr: float) -> float:
    """Ashman's D of the two classes split at ``thr``: √2 |m1 − m2| / √(s1² + s2²)."""
    lo, hi = values[values <= thr], values[values > thr]
    if lo.size < 2 or hi.size < 2:
        return np.nan
    den = np.sqrt(lo.var() + hi.var())
    return float(np.sqrt(2) * (hi.mean() - lo.mean()) / den) if den > 0 else np.inf


def _nucleus_row(k, m, hc, raw, spacing, thr, method, n_bins, min_dom) -> dict:
    from skimage.measure import euler_number

    vox = float(np.prod(spacing))
    n_nuc = int(m.sum())
    n_hc = int(hc.sum())
    eu = m & ~hc
    lac_h = float(raw[hc].mean()) if n_hc else np.nan
    lac_e = float(raw[eu].mean()) if eu.any() else np.nan
    depth = distance_um(np.pad(m, 1), spacing)[1:-1, 1:-1, 1:-1].astype(np.float64)
    d = depth[m]
    rho = d / d.max() if d.max() > 0 else np.zeros_like(d)
    b = np.minimum((rho * n_bins).astype(int), n_bins - 1)
    hcv = hc[m]
    counts = np.bincount(b, minlength=n_bins)
    hits = np.bincount(b, weights=hcv.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = np.where(counts > 0, hits / counts, np.nan)
    lab, nd = ndimage.label(hc, structure=_C26)
    sizes = np.bincount(lab.ravel())[1:] * vox if nd else np.zeros(0)
    domains = sizes[sizes >= min_dom]
    row = {
        "nucleus_id": k,
        "volume_um3": n_nuc * vox,
        "heterochromatin_volume_um3": n_hc * vox,
        "heterochromatin_fraction": n_hc / n_nuc,
        "euchromatin_fraction": 1 - n_hc / n_nuc,
        "lac_hetero_mean_per_um": lac_h,
        "lac_eu_mean_per_um": lac_e,
        "compaction_ratio": lac_h / lac_e if lac_e and np.isfinite(lac_e) else np.nan,
        "threshold_lac_per_um": thr,
        "method": method,
        "n_domains": len(domains),
        "domain_volume_mean_um3": float(domains.mean()) if len(domains) else 0.0,
        "domain_volume_median_um3": float(np.median(domains)) if len(domains) else 0.0,
        "domain_volume_max_um3": float(domains.max()) if len(domains) else 0.0,
        "largest_domain_share": float(sizes.max() / sizes.sum()) if nd else np.nan,
        "euler_number": int(euler_number(np.pad(hc, 1), connectivity=3)) if n_hc else 0,
    }
    for i in range(n_bins):
        row[f"hetero_fraction_bin{i}"] = float(profile[i])
    return row


def radial_profile(table: pd.DataFrame) -> pd.DataFrame:
    """The radial profiles of a :func:`split_chromatin` table in long form.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`split_chromatin` (columns ``hetero_fraction_bin<i>``).

    Returns
    -------
    pandas.DataFrame
        One row per nucleus and bin: ``nucleus_id``, ``bin`` (0 = nuclear envelope),
        ``depth_lo``, ``depth_hi`` (normalised depth range of the bin, 0 = envelope, 1 = core)
        and ``heterochromatin_fraction`` (of the bin's nuclear volume, 0–1); the shape
        :func:`sxtflow.plot.plot_radial_profiles` reads once ``sample`` and ``condition``
        are added.

    Examples
    --------
    >>> t = pd.DataFrame({"nucleus_id": [1], "hetero_fraction_bin0": [0.8],
    ...                   "hetero_fraction_bin1": [0.1]})
    >>> radial_profile(t)["heterochromatin_fraction"].tolist()
    [0.8, 0.1]
    """
    cols = sorted(
        (c for c in table.columns if c.startswith("hetero_fraction_bin")),
        key=lambda c: int(c.removeprefix("hetero_fraction_bin")),
    )
    n = len(cols)
    rows = [
        {
            "nucleus_id": int(r["nucleus_id"]),
            "bin": i,
            "depth_lo": i / n,
            "depth_hi": (i + 1) / n,
            "heterochromatin_fraction": float(r[c]),
        }
        for _, r in table.iterrows()
        for i, c in enumerate(cols)
    ]
    return pd.DataFrame(
        rows, columns=["nucleus_id", "bin", "depth_lo", "depth_hi", "heterochromatin_fraction"]
    )
