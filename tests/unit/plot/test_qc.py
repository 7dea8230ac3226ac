import numpy as np

from sxtflow.io import Volume
from sxtflow.plot import reconstruction_preview, uncertainty_preview


def _png_pixels(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


def test_uncertainty_preview_draws_slice_and_profile(tmp_path):
    labels = np.ones((8, 32, 32), np.uint8)
    labels[:, 8:24, 8:24] = 2
    unc = np.zeros(labels.shape, np.float32)
    unc[:, 8:24, 8] = 0.9  # a boundary the classifier is unsure about
    path = tmp_path / "u.png"
    uncertainty_preview(Volume(unc, 50.0), labels, path, suggested_z=[2, 5])
    img = _png_pixels(path)
    assert img.ndim == 3 and img.shape[0] > 300 and img[..., :3].std() > 0.05


def test_reconstruction_preview_with_sinogram(tmp_path):
    vol = Volume(np.random.default_rng(0).random((4, 16, 16)).astype(np.float32), 30.0)
    vol.meta.update(center_px=8.0, ice_lac_per_um=0.1)
    path = tmp_path / "r.png"
    reconstruction_preview(vol, path, sinogram=np.ones((10, 16)))
    assert _png_pixels(path)[..., :3].std() > 0.05
