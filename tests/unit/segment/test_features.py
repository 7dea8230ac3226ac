"""Tests for the features of sxtflow.segment: block-wise equivalence, analytic answers, storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.feature import hessian_matrix_eigvals

from sxtflow.io import InputError, Volume
from sxtflow.segment import (
    FeatureSpec,
    compute_features,
    eigvalsh3,
    gaussian_kernel,
    iter_blocks,
    open_features,
    write_features,
)


def smooth_random(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.normal(size=shape), 1.5).astype(np.float32)


# --------------------------------------------------------------------------- spec


def test_spec_defaults_names_and_round_trip():
    spec = FeatureSpec()
    assert spec.sigmas == (0.7, 1.0, 1.6, 3.5, 5.0)
    assert spec.n_features == 1 + 5 * (1 + 1 + 1 + 1 + 3 + 3)
    names = spec.names()
    assert len(names) == spec.n_features == len(set(names))
    assert names[0] == "raw"
    assert "hessian_ev0_s1.6" in names and "structure_tensor_ev2_s5" in names
    assert "gaussian_s0.7" in names and "dog_s3.5" in names
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec and again.names() == names
    small = FeatureSpec(sigmas=[2], families=["ggm"], include_raw=False)
    assert FeatureSpec.from_dict(small.to_dict()) == small
    assert small.names() == ["ggm_s2"] and small.n_features == 1
    assert small != spec


def test_spec_halo_covers_filter_support():
    assert FeatureSpec(sigmas=(5.0,), families=("gaussian",)).halo == 20
    assert FeatureSpec(sigmas=(5.0,), families=("structure_tensor",)).halo == 30
    assert FeatureSpec().halo >= 4 * 5.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"families": ("gaussian", "sobel")},
        {"sigmas": (1.0, -1.0)},
        {"sigmas": (1.0, 1.0)},
        {"families": (), "include_raw": False},
        {"family_sigmas": {"gaussian": (0.0,)}},
        {"family_sigmas": {"gaussian": (2.0, 2.0)}},
        {"sigmas": (), "families": ("gaussian", "ggm"), "family_sigmas": {"gaussian": (1.0,)}},
    ],
)
def test_spec_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        FeatureSpec(**kwargs)


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="sobel"):
        FeatureSpec(families=("sobel",))
    with pytest.raises(ValueError, match="bogus"):
        FeatureSpec.from_dict({"sigmas": [1.0], "bogus": 1})


def test_family_sigmas_select_scales_per_family():
    spec = FeatureSpec(
        sigmas=(0.7, 1.6),
        families=("gaussian", "log", "hessian"),
        family_sigmas={"gaussian": (0.7, 1.6, 8.0)},
    )
    assert spec.names() == [
        "raw",
        *("gaussian_s0.7", "gaussian_s1.6", "gaussian_s8"),
        *("log_s0.7", "log_s1.6"),
        *(f"hessian_ev{i}_s{s}" for s in ("0.7", "1.6") for i in range(3)),
    ]
    assert spec.scales("log") == (0.7, 1.6) and spec.families_at(8.0) == ("gaussian",)
    assert spec.all_sigmas == (0.7, 1.6, 8.0)
    assert spec.halo == 32 and spec.support(1.6) == 6  # σ = 8 is only a Gaussian
    # JSON round trip; a spec without it keeps its earlier dict (models stay valid)
    d = spec.to_dict()
    assert d["family_sigmas"] == {"gaussian": [0.7, 1.6, 8.0]}
    assert FeatureSpec.from_dict(d) == spec and hash(FeatureSpec.from_dict(d)) == hash(spec)
    assert "family_sigmas" not in FeatureSpec().to_dict()
    same = FeatureSpec(sigmas=(1.0, 2.0), family_sigmas={"log": (1.0, 2.0)})
    assert same == FeatureSpec(sigmas=(1.0, 2.0)) and same.family_sigmas == ()
    with pytest.raises(ValueError, match="ggm"):
        FeatureSpec(families=("gaussian",), family_sigmas={"ggm": (1.0,)})


def test_family_sigmas_features_blockwise_and_match_scipy():
    data = smooth_random((40, 36, 30), seed=5)
    spec = FeatureSpec(
        sigmas=(1.0,), families=("gaussian", "ggm"), family_sigmas={"gaussian": (1.0, 6.0)}
    )
    whole = compute_features(data, spec, block=data.shape)
    blocks = compute_features(data, spec, block=(16, 12, 20))
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-5)
    names = spec.names()
    np.testing.assert_allclose(
        whole[names.index("gaussian_s6")], ndi.gaussian_filter(data, 6.0), atol=1e-5
    )
    # the other channels are those of the spec without the extra scale
    plain = compute_features(data, FeatureSpec(sigmas=(1.0,), families=("gaussian", "ggm")))
    keep = [i for i, n in enumerate(names) if n != "gaussian_s6"]
    np.testing.assert_allclose(whole[keep], plain, rtol=0, atol=1e-6)


def test_iter_blocks_tiles_exactly():
    shape = (10, 7, 5)
    seen = np.zeros(shape, int)
    for sl in iter_blocks(shape, (4, 3, 5)):
        seen[sl] += 1
    assert (seen == 1).all()


# --------------------------------------------------------------------------- block-wise


def test_blockwise_equals_whole_volume():
    data = smooth_random((30, 26, 34))
    spec = FeatureSpec()
    whole = compute_features(data, spec, block=data.shape)
    blocks = compute_features(data, spec, block=(12, 16, 10))
    assert whole.dtype == np.float32 and whole.shape == (spec.n_features, *data.shape)
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=1e-4)


def test_single_scale_features_match_scipy_whole_volume():
    data = smooth_random((24, 20, 28), seed=3)
    spec = FeatureSpec(sigmas=(1.0, 3.5), families=("gaussian", "log", "ggm", "dog"))
    f = compute_features(data, spec, block=(8, 8, 8))
    names = spec.names()
    for s in (1.0, 3.5):
        sig = f"{s:g}"
        np.testing.assert_allclose(
            f[names.index(f"gaussian_s{sig}")], ndi.gaussian_filter(data, s), atol=1e-5
        )
        # derivative kernels are DC-corrected, so they differ slightly from scipy's
        log = ndi.gaussian_laplace(data, s)
        np.testing.assert_allclose(f[names.index(f"log_s{sig}")], log, atol=0.03 * np.ptp(log))
        ggm = ndi.gaussian_gradient_magnitude(data, s)
        np.testing.assert_allclose(f[names.index(f"ggm_s{sig}")], ggm, atol=0.03 * np.ptp(ggm))
        dog = ndi.gaussian_filter(data, s) - ndi.gaussian_filter(data, 0.66 * s)
        np.testing.assert_allclose(f[names.index(f"dog_s{sig}")], dog, atol=1e-5)
    np.testing.assert_array_equal(f[names.index("raw")], data)


def test_blockwise_into_zarr_out():
    zarr = pytest.importorskip("zarr")
    data = smooth_random((20, 18, 22), seed=1)
    spec = FeatureSpec(sigmas=(1.0, 2.0))
    out = zarr.zeros(
        shape=(spec.n_features, *data.shape), chunks=(spec.n_features, 8, 8, 8), dtype="f4"
    )
    compute_features(data, spec, block=(8, 8, 8), out=out)
    np.testing.assert_allclose(out[...], compute_features(data, spec), atol=1e-5)


def test_non_finite_and_bad_shapes_refused():
    data = np.zeros((8, 8, 8), np.float32)
    data[3, 4, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compute_features(data, FeatureSpec(sigmas=(1.0,)))
    with pytest.raises(ValueError, match="3D"):
        compute_features(np.zeros((4, 4)), FeatureSpec(sigmas=(1.0,)))
    with pytest.raises(ValueError, match="out has shape"):
        compute_features(
            np.zeros((4, 4, 4)), FeatureSpec(sigmas=(1.0,)), out=np.zeros((2, 4, 4, 4))
        )


# --------------------------------------------------------------------------- analytic


def _feature(f, spec, name):
    return f[spec.names().index(name)]


def test_constant_volume():
    spec = FeatureSpec()
    f = compute_features(np.full((20, 16, 18), 0.3, np.float32), spec, block=(10, 10, 10))
    for s in spec.sigmas:
        sig = f"{s:g}"
        np.testing.assert_allclose(_feature(f, spec, f"gaussian_s{sig}"), 0.3, atol=1e-6)
        for name in (f"log_s{sig}", f"ggm_s{sig}", f"dog_s{sig}"):
            np.testing.assert_allclose(_feature(f, spec, name), 0.0, atol=1e-6)
        for i in range(3):
            np.testing.assert_allclose(_feature(f, spec, f"hessian_ev{i}_s{sig}"), 0, atol=1e-6)
            np.testing.assert_allclose(
                _feature(f, spec, f"structure_tensor_ev{i}_s{sig}"), 0, atol=1e-6
            )


def test_linear_ramp():
    z, y, x = np.mgrid[:32, :32, :32].astype(np.float32)
    g = np.array([0.02, -0.01, 0.03], np.float32)
    ramp = g[0] * z + g[1] * y + g[2] * x
    spec = FeatureSpec(sigmas=(1.0, 2.0), families=("log", "ggm", "structure_tensor"))
    f = compute_features(ramp, spec, block=(16, 16, 16))
    inner = (slice(spec.halo, -spec.halo),) * 3  # the mirrored borders are not a ramp
    norm = float(np.linalg.norm(g))
    for s in ("1", "2"):
        np.testing.assert_allclose(_feature(f, spec, f"log_s{s}")[inner], 0.0, atol=1e-6)
        np.testing.assert_allclose(_feature(f, spec, f"ggm_s{s}")[inner], norm, rtol=1e-4)
        st = [_feature(f, spec, f"structure_tensor_ev{i}_s{s}")[inner] for i in range(3)]
        np.testing.assert_allclose(st[0], norm**2, rtol=1e-3)
        np.testing.assert_allclose(st[1], 0.0, atol=1e-7)
        np.testing.assert_allclose(st[2], 0.0, atol=1e-7)


def test_hessian_of_paraboloid():
    n = 33
    z, y, x = (np.mgrid[:n, :n, :n] - n // 2).astype(np.float64)
    a, b, c = 0.05, -0.025, 0.01  # f = a z² + b y² + c x²  →  H = diag(2a, 2b, 2c)
    vol = (a * z**2 + b * y**2 + c * x**2).astype(np.float32)
    spec = FeatureSpec(sigmas=(1.0, 1.6), families=("hessian", "log"), include_raw=False)
    f = compute_features(vol, spec, block=(16, 16, 16))
    inner = (slice(8, -8),) * 3
    expected = sorted([2 * a, 2 * b, 2 * c], reverse=True)
    for s in ("1", "1.6"):
        for i in range(3):
            ev = _feature(f, spec, f"hessian_ev{i}_s{s}")[inner]
            np.testing.assert_allclose(ev, expected[i], atol=1e-4)
        np.testing.assert_allclose(
            _feature(f, spec, f"log_s{s}")[inner], 2 * (a + b + c), atol=1e-4
        )


@pytest.mark.parametrize("sigma", [0.7, 1.0, 3.5])
def test_gaussian_kernels_exact_on_polynomials(sigma):
    r = int(4 * sigma + 0.5)
    x = np.arange(-3 * r, 3 * r + 1, dtype=float)
    for f, orders in (
        (np.full_like(x, 0.3), {0: 0.3, 1: 0.0, 2: 0.0}),
        (0.5 * x + 1.0, {1: 0.5, 2: 0.0}),
        (0.5 * x**2, {2: 1.0}),
    ):
        for order, want in orders.items():
            got = ndi.convolve1d(f, gaussian_kernel(sigma, order))[r:-r]
            np.testing.assert_allclose(got[r:-r], want, atol=1e-12)
    np.testing.assert_allclose(
        ndi.convolve1d(x, gaussian_kernel(sigma, 0)), ndi.gaussian_filter1d(x, sigma), atol=1e-12
    )


def test_eigvalsh3_matches_skimage():
    rng = np.random.default_rng(0)
    elems = [rng.normal(size=(6, 7, 8)).astype(np.float32) for _ in range(6)]
    # degenerate cases: a multiple of the identity, and two equal eigenvalues
    for e, v in zip(elems, (2.0, 0.0, 0.0, 2.0, 0.0, 2.0), strict=True):
        e[0, 0, 0] = v
    for e, v in zip(elems, (1.0, 0.0, 0.0, 1.0, 0.0, -3.0), strict=True):
        e[0, 0, 1] = v
    ours = eigvalsh3(elems)
    ref = hessian_matrix_eigvals(elems)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(ours[:, 0, 0, 0], 2.0, atol=1e-6)
    np.testing.assert_allclose(ours[:, 0, 0, 1], [1.0, 1.0, -3.0], atol=1e-6)


# --------------------------------------------------------------------------- storage


def test_write_and_open_features(tmp_path):
    data = smooth_random((20, 18, 22), seed=2)
    spec = FeatureSpec(sigmas=(1.0, 2.0), families=("gaussian", "hessian"))
    vol = Volume(data, (25.0, 20.0, 20.0))
    path = write_features(tmp_path / "f.zarr", vol, spec, block=(8, 16, 16))
    arr, spec2, voxel_nm = open_features(path)
    assert spec2 == spec
    assert voxel_nm == (25.0, 20.0, 20.0)
    assert arr.shape == (spec.n_features, *data.shape)
    assert arr.dtype == np.float32
    assert tuple(arr.chunks) == (spec.n_features, 8, 16, 16)
    assert list(arr.attrs["feature_names"]) == spec.names()
    np.testing.assert_allclose(arr[...], compute_features(data, spec), atol=1e-6)
    # no temporary directories left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.zarr"]
    # rewriting replaces the store
    write_features(path, vol, spec, block=(20, 18, 22))
    assert open_features(path)[0].chunks[1:] == (20, 18, 22)


def test_failed_write_leaves_nothing(tmp_path):
    data = np.zeros((8, 8, 8), np.float32)
    data[1, 1, 1] = np.inf
    with pytest.raises(ValueError):
        write_features(tmp_path / "bad.zarr", Volume(data, 20.0), FeatureSpec(sigmas=(1.0,)))
    assert list(tmp_path.iterdir()) == []


def test_open_features_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.zarr"
    with pytest.raises(InputError, match="missing.zarr"):
        open_features(missing)
    junk = tmp_path / "junk.zarr"
    junk.mkdir()
    (junk / "hello.txt").write_text("not zarr")
    with pytest.raises(InputError, match="junk.zarr"):
        open_features(junk)
    plain = tmp_path / "plain.zarr"
    plain.write_text("not a directory")
    with pytest.raises(InputError, match="plain.zarr"):
        open_features(plain)


def test_block_features_equal_whole_volume_and_fast_spec():
    from sxtflow.segment import FAST_SPEC, block_features

    rng = np.random.default_rng(3)
    vol = rng.normal(0.1, 0.02, (24, 30, 28)).astype(np.float32)
    full = compute_features(vol, FAST_SPEC, block=(24, 30, 28))
    core = (slice(20, 24), slice(0, 11), slice(9, 28))
    np.testing.assert_allclose(
        block_features(vol, core, FAST_SPEC), full[(slice(None), *core)], atol=1e-5
    )
    assert FAST_SPEC.n_features == 19 and FAST_SPEC.halo == 14
    bad = vol.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        block_features(bad, (slice(0, 4), slice(0, 4), slice(0, 4)), FAST_SPEC)


def test_derivative_intermediates_freed_without_gc():
    # intermediates were once held by a reference cycle: hundreds of MB per block that only
    # the cyclic garbage collector freed (19x the tomogram in RAM at 512³)
    import gc
    import weakref

    from sxtflow.segment import _filters as fm

    refs = []
    real = fm.ndi.convolve1d

    def spy(*args, **kw):
        out = real(*args, **kw)
        refs.append(weakref.ref(out))
        return out

    vol = np.random.default_rng(0).random((12, 12, 12), dtype=np.float32)
    gc.disable()
    try:
        fm.ndi.convolve1d = spy
        d = fm._gaussian_derivatives(vol, 1.0, [(2, 0, 0), (0, 1, 1)])
        fm.ndi.convolve1d = real
        kept = {id(a) for a in d.values()}
        del d
        alive = [r for r in refs if r() is not None and id(r()) not in kept]
        assert not alive and len(refs) >= 5
    finally:
        fm.ndi.convolve1d = real
        gc.enable()


def test_derivatives_cropped_after_each_pass_equal_the_full_ones_exactly():
    # the halo is dropped after each separable pass (later passes filter less): every kept
    # voxel must be the same float32 number as when the whole box is filtered
    from sxtflow.segment._filters import _SECOND, _gaussian_derivatives, _smooth

    vol = np.random.default_rng(5).random((20, 23, 26), dtype=np.float32)
    orders = [(0, 0, 0), (1, 0, 0), (0, 0, 1), *_SECOND]
    full = _gaussian_derivatives(vol, 1.6, orders)
    cut = _gaussian_derivatives(vol, 1.6, orders, crop=6)
    for o in orders:
        assert cut[o].shape == (8, 11, 14)
        assert np.array_equal(cut[o], full[o][6:-6, 6:-6, 6:-6]), o
    assert np.array_equal(_smooth(vol, 2.0, crop=3), _smooth(vol, 2.0)[3:-3, 3:-3, 3:-3])


def test_features_stage_and_config_schema_take_family_sigmas(tmp_path):
    import jsonschema
    import yaml

    from sxtflow import stages
    from sxtflow.io import write_volume

    root = Path(__file__).resolve().parents[3]
    schema = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())
    options = {"sigmas": [1.0], "families": ["gaussian"], "family_sigmas": {"gaussian": [1, 5]}}
    sub = schema["properties"]["features"]
    jsonschema.validate(options, sub)
    with pytest.raises(jsonschema.ValidationError, match="sobel"):
        jsonschema.validate({**options, "family_sigmas": {"sobel": [1.0]}}, sub)

    tomo = write_volume(tmp_path / "t.mrc", Volume(smooth_random((20, 24, 22)), 50.0))
    stages.run_features(tomo, tmp_path / "f.zarr", block=(16, 16, 16), **options)
    feats, spec, voxel_nm = open_features(tmp_path / "f.zarr")
    assert spec.names() == ["raw", "gaussian_s1", "gaussian_s5"]
    assert feats.shape == (3, 20, 24, 22) and tuple(voxel_nm) == (50.0, 50.0, 50.0)


def test_block_features_at_selected_voxels_equal_the_block():
    from sxtflow.segment import FeatureSpec, block_features

    rng = np.random.default_rng(5)
    vol = rng.normal(0.3, 0.1, (30, 26, 28)).astype(np.float32)
    spec = FeatureSpec(
        sigmas=(0.7, 1.6), families=("gaussian", "log", "ggm", "dog", "hessian"),
        family_sigmas={"gaussian": (0.7, 1.6, 3.0)},
    )  # fmt: skip
    core = (slice(3, 20), slice(0, 26), slice(10, 27))
    whole = block_features(vol, core, spec)
    at = np.nonzero(rng.random(whole.shape[1:]) < 0.3)
    np.testing.assert_array_equal(block_features(vol, core, spec, at=at), whole[(slice(None), *at)])
    st = FeatureSpec(sigmas=(1.0,), families=("structure_tensor",))
    with pytest.raises(ValueError, match="structure tensor"):
        block_features(vol, core, st, at=at)


def test_take_and_put_index_like_fancy_indexing_in_any_view():
    from sxtflow.segment._features import _put, _take

    a = np.random.default_rng(2).random((9, 10, 11)).astype(np.float32)
    views = [
        lambda b: b,
        lambda b: b[1:-2, 3:, 2:-4],
        lambda b: b[::2, :, 1::3],
        lambda b: b.transpose(2, 0, 1),
        lambda b: b[::-1],  # negative strides: plain fancy indexing
    ]
    for view in views:
        v = view(a)
        at = np.nonzero(np.random.default_rng(3).random(v.shape) < 0.3)
        offsets: dict = {}
        np.testing.assert_array_equal(_take(v, at, offsets), v[at])
        np.testing.assert_array_equal(_take(v, at, offsets), v[at])  # cached offsets
        values = np.arange(len(at[0]), dtype=np.float32)
        want, got = a.copy(), a.copy()
        view(want)[at] = values
        _put(view(got), at, values, offsets)
        np.testing.assert_array_equal(got, want)


def _block_features_at(vol, core, spec, at):
    from sxtflow.segment import block_features

    return block_features(vol, core, spec, at=at)


def test_block_features_at_voxels_outside_the_block_is_an_error():
    vol = np.random.default_rng(0).random((12, 12, 12)).astype(np.float32)
    spec = FeatureSpec(sigmas=(1.0,), families=("gaussian",))
    core = (slice(0, 4), slice(0, 6), slice(2, 8))
    z, y, x = np.zeros(1, int), np.array([6]), np.zeros(1, int)  # y = 6: the next row
    with pytest.raises(IndexError, match="outside the block"):
        _block_features_at(vol, core, spec, (z, y, x))
