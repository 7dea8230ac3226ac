"""Refine a voxel classifier's labels with what is known about cells, in physical units.

A voxel classifier decides each voxel on its own features; it leaves specks (a few voxels
of "nucleus" in the cytoplasm, rims of another class around dense objects) and cannot know
that a yeast cell has one nucleus. This module applies per-class rules:

* ``min_volume_um3``: connected pieces smaller than this (µm³) are debris;
* ``max_objects``: only the largest ``n`` pieces are kept (e.g. one nucleus per cell);
* ``fill_holes``: holes inside a piece (e.g. a nucleolus misread as another class) are filled;
* ``smooth_radius_um``: the class is opened then closed with a ball of this radius (µm),
  removing protrusions narrower than the ball (e.g. 0.15 for a round yeast nucleus whose
  low contrast lets the cytoplasm's texture add lobes to it);
* ``inside``: a piece whose outer boundary lies mostly (≥ ``inside_fraction``, default 0.5)
  in the named class is part of it (a dense nucleolus read as "mitochondrion" in the
  nucleus becomes nucleus: mitochondria do not sit inside the nucleus);
* ``boundary_um`` (needs the tomogram): each object's surface is moved, by at most this
  distance (µm), to where the blurred LAC puts it (:func:`snap_boundaries`): the
  classifier's boundaries depend on where the annotator stopped painting, the LAC's do
  not.

Removed voxels take the label that surrounds them most (majority of the piece's outer
boundary), so nothing is left unlabelled.

:func:`separate_instances` splits one class into objects (connected components, with a
distance-transform watershed separating touching round objects such as droplets or
vacuoles).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi

from ._boundary import _STRUCT, _grow, estimate_blur, mask_box, snap_boundaries
from ._distance import distance_um

#: Per-class rules used by the demo (classes not listed are left as they are).
#: ``boundary_um``: the boundary step (needs the tomogram; without it these defaults skip
#: it): two voxels at 40 nm, mitochondria three (thin tubes whose classifier seeds miss
#: whole segments), the nucleus four (a low-contrast body whose classifier outline, after
#: smoothing, lies up to a few voxels inside); measured on the robustness suite
#: (docs/segmentation.md). Not for the
#: cell's outline (``ice``): a yeast cell's wall is a thin dense shell, not a step, and
#: the step model put the outline a voxel outside it (+2 % cell volume on the demo).
DEFAULT_RULES: dict[str, dict] = {
    "nucleus": {"min_volume_um3": 0.05, "max_objects": 1, "fill_holes": True, "boundary_um": 0.16},
    "vacuole": {"min_volume_um3": 0.02, "fill_holes": True, "boundary_um": 0.08},
    # droplets of 0.005 µm³ lose ~1 voxel at their rim: 0.002 µm³ keeps them (lymphocytes)
    "lipid_droplet": {"min_volume_um3": 0.002, "fill_holes": True, "boundary_um": 0.08},
    "mitochondrion": {"min_volume_um3": 0.005, "inside": "nucleus", "boundary_um": 0.12},
}


def _surrounding_label(labels: np.ndarray, piece: np.ndarray, exclude: int) -> int:
    """Most frequent label on the one-voxel shell around ``piece`` (not ``exclude``, not 0)."""
    shell = ndi.binary_dilation(piece, _STRUCT) & ~piece
    values = labels[shell]
    values = values[(values != exclude) & (values != 0)]
    if values.size == 0:
        return 0
    return int(np.bincount(values).argmax())


def _class_box(out: np.ndarray, value: int, margin: int = 1):
    """The bounding box of class ``value`` grown by ``margin`` voxels (clipped), or None.

    Per-class work in this box equals the work on the whole volume (outside it there is no
    voxel of the class, and each piece's crop reaches one voxel past the piece), without
    the whole volume's int32 labels.
    """
    box = mask_box(out == value)
    return None if box is None else _grow(box, margin, out.shape)


def _levels(labels: np.ndarray, lac: np.ndarray) -> dict[int, tuple[float, float]]:
    """Typical LAC of every label value present: (median, robust SD = 1.4826 × median
    absolute deviation), µm⁻¹ (the classes' levels and how much their voxels vary)."""
    out = {}
    labels, lac = labels[::2, ::2, ::2], lac[::2, ::2, ::2]  # every 8th voxel is plenty
    for v in np.unique(labels):
        if v:
            x = lac[labels == v]
            med = float(np.median(x))
            out[int(v)] = (med, 1.4826 * float(np.median(np.abs(x - med))))
    return out


def _replacement_label(labels, piece, exclude, lac=None, levels=None) -> int:
    """The label a removed piece takes, of the labels around it (not ``exclude``, not 0).

    Without ``lac``: the most frequent one on its one-voxel shell. With it (and
    ``levels``, :func:`_levels`): the most probable one given the piece's median LAC
    ``m`` and where it touches, ``share_v · N(m; median_v, sd_v)`` with ``share_v`` the
    fraction of the shell that is label ``v`` (the prior: a piece belongs to what
    surrounds it) and the class's level and spread (the likelihood). A dense fragment of
    "nucleus" at the end of a mitochondrion, with the mitochondrion's LAC, becomes
    mitochondrion, not the cytoplasm around it; a large blob of cytoplasm the
    classifier read as a second nucleus, with a LAC between the cytoplasm's and the
    mitochondria's (a ±60° tilt series' missing wedge smears dense structures into the
    cytoplasm), that touches a mitochondrion with a few voxels of its surface, stays
    cytoplasm instead of growing the mitochondrion by thousands of voxels.
    """
    if lac is None or levels is None:
        return _surrounding_label(labels, piece, exclude)
    shell = ndi.binary_dilation(piece, _STRUCT) & ~piece
    around = labels[shell]
    around = around[(around != 0) & (around != exclude)]
    cand = [int(v) for v in np.unique(around) if int(v) in levels]
    if not cand:
        return _surrounding_label(labels, piece, exclude)
    m = float(np.median(lac[piece]))
    share = np.bincount(around, minlength=max(cand) + 1) / around.size

    def log_post(v):
        med, sd = levels[v]
        sd = max(sd, 1e-6)  # a noise-free class: its level decides alone
        return float(np.log(share[v])) - 0.5 * ((m - med) / sd) ** 2 - float(np.log(sd))

    return max(cand, key=log_post)


def _merge_enclosed(out: np.ndarray, value: int, host: int, fraction: float) -> None:
    """Relabel (in place) pieces of ``value`` whose outer shell is ≥ ``fraction`` ``host``."""
    box = _class_box(out, value)
    if box is None:
        return
    out = out[box]  # a view: relabelled in place
    pieces, n = ndi.label(out == value, _STRUCT)
    for idx, sl in enumerate(ndi.find_objects(pieces), start=1):
        sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
        piece = pieces[sl] == idx
        shell = ndi.binary_dilation(piece, _STRUCT) & ~piece
        around = out[sl][shell]
        if around.size and np.mean(around == host) >= fraction:
            out[sl][piece] = host


def _smooth_class(out: np.ndarray, value: int, spacing, radius_um: float, threads: int = 1) -> None:
    """Morphological opening then closing (in place) of class ``value`` by a ball in µm.

    Euclidean distance transforms in µm (anisotropic voxels allowed) instead of a
    structuring element, so the cost does not grow with the radius; only the class's
    bounding box (grown by the radius) is processed. Each connected piece the opening
    removes takes the label surrounding it most (as other removed pieces); voxels the
    closing adds (never label 0) join the class. ``threads``: of the distance transforms
    (the same result).
    """
    found = mask_box(out == value)
    if found is None:
        return
    spacing = np.asarray(spacing, dtype=float)
    sl = _grow(found, np.ceil(radius_um / spacing).astype(int) + 2, out.shape)
    sub = out[sl]
    m = sub == value
    # a voxel exactly ``radius_um`` away is inside the ball (distances carry rounding error)
    radius_um = float(radius_um) * (1 + 1e-6)

    def dist(x, outside):  # µm from each True voxel to the nearest False one
        padded = np.pad(x, 1, constant_values=outside)
        return distance_um(padded, spacing, threads)[1:-1, 1:-1, 1:-1]

    eroded = dist(m, False) > radius_um
    if eroded.any():
        opened = dist(~eroded, True) <= radius_um
        dilated = dist(~opened, True) <= radius_um
        closed = dist(dilated, False) > radius_um
    else:  # nothing is wider than the ball: the whole class goes
        closed = eroded
    removed = m & ~closed
    added = closed & ~m & (sub != 0)
    if removed.any():
        pieces, _ = ndi.label(removed, _STRUCT)
        for idx, psl in enumerate(ndi.find_objects(pieces), start=1):
            psl = tuple(slice(max(a.start - 1, 0), a.stop + 1) for a in psl)
            piece = pieces[psl] == idx
            sub[psl][piece] = _surrounding_label(sub[psl], piece, value)
    sub[added] = value


def _drop_pieces(out, value, rule, voxel_um3, lac, levels, debris=True) -> None:
    """Apply ``max_objects`` (and with ``debris`` ``min_volume_um3``) of ``rule`` to class
    ``value`` (in place).

    Removed pieces take the replacement label of :func:`_replacement_label`.
    """
    box = _class_box(out, value)
    if box is None:
        return
    out = out[box]  # the class's box (a view: relabelled in place)
    lac = None if lac is None else lac[box]
    pieces, n = ndi.label(out == value, _STRUCT)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    drop = np.zeros(n + 1, dtype=bool)
    if debris:
        drop[1:] |= sizes < float(rule.get("min_volume_um3", 0.0)) / voxel_um3
    max_objects = rule.get("max_objects")
    if max_objects is not None and n > int(max_objects):
        order = np.argsort(sizes)[::-1]  # largest first
        drop[1:][order[int(max_objects) :]] = True
    if drop[1:].any():
        slices = ndi.find_objects(pieces)
        for idx in np.flatnonzero(drop[1:]) + 1:
            sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in slices[idx - 1])
            piece = pieces[sl] == idx
            new = _replacement_label(
                out[sl], piece, value, None if lac is None else lac[sl], levels
            )
            out[sl][piece] = new


def _drop_halos(out, value, spacing_um, blur_vox, lac, levels) -> None:
    """Relabel (in place) pieces of class ``value`` that are another object's blur halo.

    Between two compartments the blurred LAC passes through every level in between, so
    the partial-volume shell around a small dense object (a lipid droplet of 2–3 voxels
    radius in the cytoplasm) reads as a class whose level lies between the two (a
    mitochondrion). A piece is such a halo when its class's level lies strictly between
    that of the label surrounding it (the most frequent on its one-voxel shell) and that
    of another label ``v``, and *every* voxel of the piece lies within the optics' reach
    of ``v``'s surface, ``2 · blur_vox`` voxels (where a Gaussian edge has reached 98 % of
    its step; the surface lies half a voxel beyond ``v``'s outermost voxel centres). A
    real object of the class has voxels beyond that reach (or it is thinner than the
    blur, which the data cannot tell from the halo). Halos take the replacement label of
    :func:`_replacement_label`. Levels: :func:`_levels`; ``blur_vox``: the tomogram's blur
    (:func:`estimate_blur`).
    """
    if levels is None or value not in levels or not (blur_vox and np.isfinite(blur_vox)):
        return
    spacing = np.asarray(spacing_um, dtype=float)
    reach = (2.0 * float(blur_vox) + 0.5) * float(spacing.min())  # µm, between centres
    grow = np.ceil(reach / spacing).astype(int) + 2
    box = _class_box(out, value, margin=int(grow.max()))
    if box is None:
        return
    out, lac = out[box], lac[box]  # views: relabelled in place
    level = levels[value][0]
    pieces, _ = ndi.label(out == value, _STRUCT)
    for idx, sl in enumerate(ndi.find_objects(pieces), start=1):
        sl = tuple(
            slice(max(s.start - int(g), 0), min(s.stop + int(g), n))
            for s, g, n in zip(sl, grow, out.shape, strict=True)
        )
        lab, piece = out[sl], pieces[sl] == idx
        # a voxel further than ``reach`` inside the piece is further than that from v
        if float(distance_um(np.pad(piece, 1), spacing).max()) > reach:
            continue
        shell = ndi.binary_dilation(piece, _STRUCT) & ~piece
        around = lab[shell]
        around = around[(around != 0) & (around != value)]
        if around.size == 0:
            continue
        s = int(np.bincount(around).argmax())
        if s not in levels:
            continue
        for v in np.unique(lab):
            v = int(v)
            if v in (0, value, s) or v not in levels:
                continue
            if not (levels[v][0] - level) * (level - levels[s][0]) > 0:
                continue  # the class's level is not between v's and the surroundings'
            if (distance_um(lab != v, spacing)[piece] <= reach).all():
                lab[piece] = _replacement_label(lab, piece, value, lac[sl], levels)
                break


def refine_labels(
    labels: np.ndarray,
    classes: Mapping[str, int],
    spacing_um,
    rules: Mapping[str, Mapping] | None = None,
    lac: np.ndarray | None = None,
    threads: int = 1,
) -> np.ndarray:
    """Apply per-class clean-up rules to a semantic label volume.

    Parameters
    ----------
    labels : ndarray of uint8, shape (z, y, x)
        Class values (0 = no data).
    classes : mapping of str to int
        Class name → label value.
    spacing_um : tuple of 3 float
        Voxel size (z, y, x) in µm.
    rules : mapping, optional
        Class name → ``{"min_volume_um3": float, "max_objects": int, "fill_holes": bool,
        "inside": str, "inside_fraction": float, "smooth_radius_um": float,
        "boundary_um": float}`` (any subset).
        Rules apply in the order given; within a class ``inside`` runs first, then
        ``smooth_radius_um`` (opening then closing with a ball of that radius in µm), then
        the size rules and ``fill_holes``. Default :data:`DEFAULT_RULES` (without ``lac``:
        all but their ``boundary_um``). Unknown class names or keys raise
        ``ValueError``. ``boundary_um`` (needs ``lac``) runs after ``inside`` and the
        smoothing, before the size rules: each object's surface is moved to where the
        blurred LAC puts it, never further than that distance (µm) from where the
        classifier put it (:func:`snap_boundaries`; the blur is estimated once from the
        classes that have the rule, pieces smaller than their class's ``min_volume_um3``
        not voting).
    lac : ndarray of float, shape (z, y, x), optional
        The tomogram (LAC, µm⁻¹). With it, removed pieces take the neighbouring label
        most probable given their median LAC and where they touch (the share of the
        piece's surface a label has, times the likelihood of the piece's LAC under that
        label's median and spread over the volume; :func:`_replacement_label`) instead
        of the most frequent one, and ``boundary_um`` rules can run.
    threads : int
        Threads (or processes, for large objects) of the boundary step and the blur
        estimate (objects snapped at the same time; the result does not depend on it;
        see :func:`snap_boundaries`) and of the smoothing's distance transforms.

    Returns
    -------
    ndarray of uint8, shape (z, y, x)
        A refined copy; removed pieces take the label surrounding them.

    Examples
    --------
    >>> lab = np.full((9, 9, 9), 2, np.uint8)
    >>> lab[2:7, 2:7, 2:7] = 4; lab[0, 0, 0] = 4          # a nucleus and a speck
    >>> out = refine_labels(lab, {"cytoplasm": 2, "nucleus": 4}, (0.1, 0.1, 0.1),
    ...                     {"nucleus": {"max_objects": 1}})
    >>> int(out[0, 0, 0]), int((out == 4).sum())
    (2, 125)
    """
    defaults = rules is None
    rules = DEFAULT_RULES if defaults else rules
    known = {
        "min_volume_um3",
        "max_objects",
        "fill_holes",
        "inside",
        "inside_fraction",
        "smooth_radius_um",
        "boundary_um",
    }
    voxel_um3 = float(np.prod(spacing_um))
    out = np.array(labels, dtype=np.uint8, copy=True)
    if lac is not None:
        lac = np.asarray(lac)
        if lac.shape != out.shape:
            raise ValueError(f"lac has shape {lac.shape}, labels {out.shape}")
    levels = _levels(out, lac) if lac is not None else None
    blur = None
    ahead = {}  # objects of later classes snapped while a worker was idle (same results)
    for name, rule in rules.items():
        if name not in classes:
            continue  # a rule for a class this run does not segment
        bad = set(rule) - known
        if bad:
            raise ValueError(
                f"unknown refine keys for {name!r}: {sorted(bad)}; known {sorted(known)}"
            )
        value = int(classes[name])
        band = float(rule.get("boundary_um", 0.0))
        if band < 0 or not np.isfinite(band):
            raise ValueError(f"{name!r}: boundary_um must be ≥ 0 µm, got {band}")
        if band > 0 and lac is None:
            if not defaults:
                raise ValueError(f"{name!r}: boundary_um needs the tomogram (lac)")
            band = 0.0  # the defaults without a tomogram: everything but the boundary step
        if rule.get("inside") in classes:
            _merge_enclosed(
                out, value, int(classes[rule["inside"]]), float(rule.get("inside_fraction", 0.5))
            )
        radius = float(rule.get("smooth_radius_um", 0.0))
        if radius < 0 or not np.isfinite(radius):
            raise ValueError(f"{name!r}: smooth_radius_um must be ≥ 0 µm, got {radius}")
        if radius > 0:
            _smooth_class(out, value, spacing_um, radius, threads)
        if band > 0:
            # surplus objects first (snapping them would be wasted work); not debris: a
            # thin tube's short classifier pieces grow to their true size when snapped
            _drop_pieces(out, value, rule, voxel_um3, lac, levels, debris=False)
            if blur is None:  # the optics' blur, once per volume, from the snapped classes
                values = [
                    int(classes[n])
                    for n, r in rules.items()
                    if n in classes and r.get("boundary_um")
                ]
                # pieces the size rules will remove as debris do not vote (in a noisy
                # tomogram most of them are noise read as the class)
                least = {
                    int(classes[n]): int(float(r.get("min_volume_um3", 0.0)) / voxel_um3)
                    for n, r in rules.items()
                    if n in classes
                }
                blur = estimate_blur(
                    out,
                    lac,
                    [v for v in values if v in levels],
                    spacing_um,
                    min_voxels=least,
                    threads=threads,
                )
            names = list(rules)
            # the classes snapped after this one (the same blur and defaults)
            then = [
                (int(classes[n]), float(r["boundary_um"]))
                for n, r in list(rules.items())[names.index(name) + 1 :]
                if n in classes and float(r.get("boundary_um", 0.0)) > 0
            ]
            snap_boundaries(
                out,
                lac,
                value,
                spacing_um,
                band_um=band,
                blur_vox=blur,
                threads=threads,
                then=then,
                memo=ahead,
            )
            # the blur halos of denser (or fainter) objects read as this class
            _drop_halos(out, value, spacing_um, blur, lac, levels)
        _drop_pieces(out, value, rule, voxel_um3, lac, levels)
        box = _class_box(out, value)
        if box is None:
            continue
        sub = out[box]  # the class's box (a view: relabelled in place)
        if rule.get("fill_holes"):  # in the box grown by one: the same holes
            mask = sub == value
            filled = ndi.binary_fill_holes(mask)
            sub[filled & ~mask & (sub != 0)] = value
    return out


def separate_instances(
    mask: np.ndarray,
    spacing_um,
    *,
    min_radius_um: float | None = None,
    min_volume_um3: float = 0.0,
) -> np.ndarray:
    """Split a class mask into objects; touching round objects are separated by watershed.

    Without ``min_radius_um`` the objects are the 26-connected components. With it, each
    component is split by a watershed of its negated Euclidean distance transform (in µm,
    anisotropic voxels allowed) from markers at the local maxima of the distance that are
    at least ``min_radius_um`` deep and ``min_radius_um`` apart: two touching droplets of
    radius ≥ ``min_radius_um`` become two objects, a single one stays whole.

    Parameters
    ----------
    mask : ndarray of bool, shape (z, y, x)
        Voxels of one class (e.g. ``labels == value``).
    spacing_um : tuple of 3 float
        Voxel size (z, y, x) in µm.
    min_radius_um : float, optional
        Smallest radius (µm) of an object worth separating; None = components only.
    min_volume_um3 : float
        Objects smaller than this (µm³) are dropped (set to 0).

    Returns
    -------
    ndarray of int32, shape (z, y, x)
        0 = background, 1..n = objects (numbered in C order of their first voxel).

    Examples
    --------
    >>> z, y, x = np.mgrid[:20, :20, :36]
    >>> two = ((z - 10) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 49) | (
    ...     (z - 10) ** 2 + (y - 10) ** 2 + (x - 22) ** 2 <= 49)   # touching balls r = 7
    >>> int(separate_instances(two, (0.1, 0.1, 0.1)).max())
    1
    >>> int(separate_instances(two, (0.1, 0.1, 0.1), min_radius_um=0.4).max())
    2
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D (z, y, x), got shape {mask.shape}")
    spacing = tuple(float(s) for s in spacing_um)
    if len(spacing) != 3 or any(not s > 0 for s in spacing):
        raise ValueError(f"spacing_um must be 3 positive voxel sizes in µm, got {spacing_um}")
    comps, n = ndi.label(mask, _STRUCT)
    if min_radius_um is None or n == 0:
        out = comps
    else:
        if not min_radius_um > 0:
            raise ValueError(f"min_radius_um must be positive µm, got {min_radius_um}")
        dist = distance_um(np.pad(mask, 1), spacing)[1:-1, 1:-1, 1:-1]
        vox = min(spacing)
        peaks = peak_local_max(
            dist,
            min_distance=max(1, int(round(min_radius_um / vox))),
            threshold_abs=float(min_radius_um),
            labels=comps,
            exclude_border=False,
        )
        markers = np.zeros(mask.shape, dtype=np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        # components without a deep enough peak keep one marker of their own
        has = np.zeros(n + 1, dtype=bool)
        has[comps[tuple(peaks.T)]] = True
        next_id = len(peaks) + 1
        for idx, sl in enumerate(ndi.find_objects(comps), start=1):
            if not has[idx]:
                local = np.argmax(np.where(comps[sl] == idx, dist[sl], -1.0))
                pos = tuple(
                    s.start + c
                    for s, c in zip(sl, np.unravel_index(local, dist[sl].shape), strict=True)
                )
                markers[pos] = next_id
                next_id += 1
        out = watershed(-dist, markers, mask=mask)
    out = out.astype(np.int32, copy=False)
    if min_volume_um3 > 0 and out.max() > 0:
        sizes = np.bincount(out.ravel()) * float(np.prod(spacing))
        small = np.flatnonzero(sizes < min_volume_um3)
        out[np.isin(out, small[small > 0])] = 0
    # renumber 1..n in C order of first voxel
    ids, first = np.unique(out.ravel(), return_index=True)
    keep = ids[ids > 0][np.argsort(first[ids > 0], kind="stable")]
    lut = np.zeros(int(out.max()) + 1, dtype=np.int32)
    lut[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    return lut[out]
