"""The napari widget, driven as a user would (Qt under Xvfb; skipped without napari or a display).

Qt's xcb platform on the X display pytest-xvfb starts (Mesa's software OpenGL); napari's
``make_napari_viewer`` fixture cleans up. Opens a tiny simulated sample through the plugin's npe2
manifest, goes to a suggested slice,
paints strokes of two classes, saves, trains and previews, and takes the screenshot the README
shows (written to ``$SXTFLOW_SCREENSHOT`` when set, e.g. ``docs/images/napari.png``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("napari", reason="napari is not installed (pip install -e '.[napari]')")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed (the test extra)")


def _qt_display_problem() -> str:
    """Why Qt cannot open a window with OpenGL here ('' if it can), probed in a subprocess
    (a Qt platform plugin that fails to load aborts the whole process)."""
    if not os.environ.get("DISPLAY"):
        return "no X display"
    probe = (
        "from qtpy.QtWidgets import QApplication; from qtpy.QtGui import QOpenGLContext; "
        "app = QApplication([]); assert QOpenGLContext().create()"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["Qt failed"])[-1]


_PROBLEM = _qt_display_problem()
if _PROBLEM:
    pytest.skip(
        f"napari needs an X display with OpenGL ({_PROBLEM}): install Xvfb and Qt's xcb libraries "
        "(tests/gui/install-xvfb.sh, run by .ci/run); pytest-xvfb then starts the display",
        allow_module_level=True,
    )

from _annotation_project import make_project  # noqa: E402

from sxtflow import io, segment, stages  # noqa: E402
from sxtflow.napari import launch  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("napari") / "proj")


@pytest.fixture
def opened(project, make_napari_viewer):
    proj, truth = project
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1300, 850)
    _, widget = launch(
        "s2", configfile="config/config.yaml", workdir=proj.workdir, viewer=viewer, block=False
    )
    return viewer, widget, proj, truth


def stroke(layer, value, points, brush=2):
    """Paint a brush stroke through ``points`` (data coordinates, z, y, x) as a mouse drag."""
    layer.selected_label = value
    layer.brush_size = brush
    for a, b in zip(points[:-1], points[1:], strict=True):
        for t in np.linspace(0.0, 1.0, 8):
            layer.paint(tuple(np.add(a, np.multiply(t, np.subtract(b, a)))), value)


def paint_two_classes(widget, proj, truth):
    """Go to the first suggested slice through the nucleus; ice along the top edge, the
    nucleus's own class inside."""
    nucleus = proj.classes["nucleus"]
    items = [widget.suggestions.item(i) for i in range(widget.suggestions.count())]
    item = next(it for it in items if (truth["s2"][it.data(256)] == nucleus).any())
    z = item.data(256)
    widget.suggestions.itemClicked.emit(item)
    assert widget.current_z == z
    layer = widget.layers["annotation"]
    ice = proj.classes["ice"]
    zs, ys, xs = np.nonzero(truth["s2"][z : z + 1] == nucleus)
    cy, cx = int(np.median(ys)), int(np.median(xs))
    widget.class_box.setCurrentIndex(list(proj.classes.values()).index(ice))
    assert layer.selected_label == ice
    stroke(layer, ice, [(z, 6, 14), (z, 6, 34)])
    stroke(layer, nucleus, [(z, cy - 2, cx - 2), (z, cy + 2, cx + 2)], brush=1)
    return z


def test_open_paint_and_save(opened):
    viewer, widget, proj, truth = opened
    names = [layer.name for layer in viewer.layers]
    assert names[:2] == ["s2 tomogram", "s2 prediction"]
    assert {"s2 uncertainty", "suggested slices", "s2 annotation"} <= set(names)
    vol = widget.tomogram
    np.testing.assert_allclose(viewer.layers["s2 tomogram"].scale, vol.spacing_um)  # µm
    assert [str(u) for u in viewer.layers["s2 tomogram"].units] == ["micrometer"] * 3
    sugg = viewer.layers["suggested slices"].data
    assert [int(p[0]) for p in sugg] == [s["z"] for s in proj.suggestions("s2")]
    ann = viewer.layers["s2 annotation"]
    assert ann.colormap.map(np.array([proj.classes["nucleus"]]))[0][:3] == pytest.approx(
        [0x4F / 255, 0x7C / 255, 1.0], abs=1e-6
    )  # the label table's colour

    z = paint_two_classes(widget, proj, truth)
    painted = np.asarray(ann.data)
    assert set(np.unique(painted[z])) == {0, proj.classes["ice"], proj.classes["nucleus"]}
    assert not painted[np.arange(painted.shape[0]) != z].any()  # only the shown slice

    widget.save_button.click()
    assert "saved" in widget.status.text()
    saved = io.read_volume(proj.workdir / "annotations/s2.mrc")
    assert saved.data.shape == vol.data.shape
    assert saved.voxel_nm == vol.voxel_nm
    assert saved.data.dtype.kind in "iu"  # label values (MRC stores uint8 as mode 6)
    np.testing.assert_array_equal(saved.data, painted)
    assert proj.sheet.loc["s2", "annotation"] == "annotations/s2.mrc"


def test_train_and_preview_equals_pipeline(opened, qtbot, tmp_path):
    viewer, widget, proj, truth = opened
    z = paint_two_classes(widget, proj, truth)  # "train and preview" saves the strokes first
    widget.scope_box.setCurrentText("all annotated samples")
    with qtbot.waitSignal(widget.finished, timeout=180_000) as done:
        widget.train_button.click()
    assert done.args[0].startswith("trained on"), done.args[0]
    preview = viewer.layers["s2 preview"]
    region = tuple(slice(a, b) for a, b in preview.metadata["region"])
    assert region[0] == slice(z, z + 1)
    np.testing.assert_allclose(
        preview.translate, [r.start for r in region] * np.asarray(widget.tomogram.spacing_um)
    )

    # the pipeline's predict rule with the model the widget trained (same model, same code)
    model_path = proj.workdir / "results/napari/classifier.skops"
    _, card = segment.load_model(model_path)
    assert card["training_annotations"][-1].endswith("annotations/s2.mrc")
    stages.run_predict(
        proj.workdir / "results/s2/tomogram.mrc", model_path, tmp_path / "pred.mrc",
        block=proj.predict_block,
    )  # fmt: skip
    want = io.read_volume(tmp_path / "pred.mrc").data[region]
    np.testing.assert_array_equal(np.asarray(preview.data), want)
    assert len(np.unique(want)) >= 3  # a real segmentation, not an empty box

    shot = tmp_path / "napari.png"
    img = viewer.screenshot(str(shot), canvas_only=False, flash=False)
    assert img.shape[0] > 400 and img.shape[1] > 600 and img[..., :3].std() > 10
    if os.environ.get("SXTFLOW_SCREENSHOT"):
        shutil.copy(shot, os.environ["SXTFLOW_SCREENSHOT"])


def test_menu_contribution():
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()
    widgets = pm.get_manifest("sxtflow").contributions.widgets
    assert [w.display_name for w in widgets] == ["Annotate and train"]


def test_ome_zarr_opens_in_napari(project, make_napari_viewer, tmp_path):
    pytest.importorskip("napari_ome_zarr")
    proj, _ = project
    root = proj.workdir
    stages.run_export_ome_zarr(
        root / "results/s2/tomogram.mrc", tmp_path / "ome",
        labels={"prediction": root / "results/s2/prediction.mrc"},
    )  # fmt: skip
    viewer = make_napari_viewer()
    layers = viewer.open(str(tmp_path / "ome/tomogram.ome.zarr"), plugin="napari-ome-zarr")
    kinds = sorted(type(layer).__name__ for layer in layers)
    assert kinds == ["Image", "Labels"]
    image = next(layer for layer in layers if type(layer).__name__ == "Image")
    assert image.multiscale and len(image.data) == 2
    np.testing.assert_allclose(image.scale[-3:], proj.tomogram("s2").spacing_um)
