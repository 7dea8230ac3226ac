"""The dock widget: a sample's layers, suggested slices, save, train and preview.

Layers (all in µm, the tomogram's voxel size as their ``scale``):

``<s> tomogram`` (LAC µm⁻¹), ``<s> labels`` (the pipeline's final labels, else its
prediction), ``<s> uncertainty`` (hidden), ``suggested slices`` (a point at the centre of each
suggested slice, shown on its slice), ``<s> annotation`` (editable, the label table's colours
and class names; starts from the saved annotation) and, after training, ``<s> preview``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from qtpy.QtCore import Signal
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..annotation import PREVIEW_MODEL, AnnotationProject, preview_region

TRAIN_SCOPES = ("all annotated samples", "this sample")
#: largest preview box in y and x (voxels): a slice's preview stays within seconds
PREVIEW_SIZE_YX = (256, 256)


def _colormap(table, values):
    from napari.utils.colormaps import DirectLabelColormap

    colours = {None: "transparent", 0: "transparent"}
    for v in values:
        colours[int(v)] = table.colour(table.name(int(v)))
    return DirectLabelColormap(color_dict=colours)


def _features(classes: dict[str, int]):
    import pandas as pd

    return pd.DataFrame(
        {"index": [0, *classes.values()], "class": ["not annotated", *classes.keys()]}
    )


class AnnotationWidget(QWidget):
    """Annotate where it helps: paint suggested slices, save, train and preview.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Passed by napari (npe2) when the widget is opened from the Plugins menu.
    """

    #: emitted with the status text when a background job (train and preview) ends
    finished = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.project: AnnotationProject | None = None
        self.sample: str | None = None
        self.tomogram = None
        self.layers: dict[str, object] = {}
        self.model = None
        self.card = None
        self.worker = None

        self.config_edit = QLineEdit("config/config.yaml")
        self.sample_box = QComboBox()
        self.open_button = QPushButton("Open")
        self.suggestions = QListWidget()
        self.class_box = QComboBox()
        self.save_button = QPushButton("Save annotation")
        self.scope_box = QComboBox()
        self.scope_box.addItems(TRAIN_SCOPES)
        self.depth_box = QSpinBox()
        self.depth_box.setRange(1, 64)
        self.depth_box.setSuffix(" slice(s)")
        self.train_button = QPushButton("Train and preview")
        self.status = QLabel("Open a sample of the config's sample sheet.")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(130)

        form = QFormLayout()
        form.addRow("config", self.config_edit)
        row = QHBoxLayout()
        row.addWidget(self.sample_box, 1)
        row.addWidget(self.open_button)
        form.addRow("sample", row)
        form.addRow("paint", self.class_box)
        form.addRow("train on", self.scope_box)
        form.addRow("preview", self.depth_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Suggested slices (most uncertain first):"))
        self.suggestions.setMaximumHeight(160)
        layout.addWidget(self.suggestions)
        layout.addWidget(self.save_button)
        layout.addWidget(self.train_button)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.config_edit.editingFinished.connect(lambda: self.set_config(self.config_edit.text()))
        self.open_button.clicked.connect(lambda: self.open_sample(self.sample_box.currentText()))
        self.suggestions.itemClicked.connect(lambda item: self.go_to_slice(item.data(256)))
        self.class_box.currentIndexChanged.connect(self._select_class)
        self.save_button.clicked.connect(self._save_clicked)
        self.train_button.clicked.connect(self.train_and_preview)
        self._enable(False)
        if Path("config/config.yaml").exists():
            try:
                self.set_config("config/config.yaml")
            except Exception as exc:  # a broken config is shown, not raised at startup
                self.status.setText(str(exc))

    # ------------------------------------------------------------------ project

    def set_config(self, configfile, *, samples=None, workdir: str | os.PathLike = "."):
        """Read the workflow config (and its sample sheet) and list the samples."""
        overrides = {"samples": str(samples)} if samples else {}
        self.project = AnnotationProject.from_configfile(configfile, workdir, **overrides)
        self.config_edit.setText(str(configfile))
        self.sample_box.clear()
        self.sample_box.addItems(self.project.samples)
        self.class_box.clear()
        table = self.project.table
        for name, value in self.project.classes.items():
            pix = QPixmap(12, 12)
            pix.fill(QColor(table.colour(name)))
            self.class_box.addItem(QIcon(pix), f"{name} ({value})", value)
        self.status.setText(f"{len(self.project.samples)} samples in {self.project.sheet_path}")

    def _enable(self, on: bool) -> None:
        for w in (self.save_button, self.train_button, self.class_box, self.depth_box):
            w.setEnabled(on)

    # ------------------------------------------------------------------ layers

    def open_sample(self, sample: str) -> None:
        """Show a sample: tomogram, current labels, uncertainty, suggestions, annotation."""
        proj = self.project
        if proj is None:
            raise RuntimeError("set a config first")
        vol = proj.tomogram(sample)
        files = proj.files(sample)
        for layer in list(self.layers.values()):
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = {}
        self.sample, self.tomogram = sample, vol
        self.sample_box.setCurrentText(sample)
        where = {"scale": vol.spacing_um, "units": ("um",) * 3}  # voxel size in µm
        lo, hi = np.percentile(vol.data[:: max(1, vol.data.shape[0] // 16)], (0.5, 99.5))
        add = self.viewer.add_image
        self.layers["tomogram"] = add(
            vol.data, name=f"{sample} tomogram", **where, colormap="gray",
            contrast_limits=(float(lo), float(hi)), metadata={"unit": "1/um", "path": str(files.tomogram)},
        )  # fmt: skip
        values = list(proj.classes.values())
        cmap = _colormap(proj.table, sorted(set(values) | set(proj.table.table["value"])))
        for key in ("labels", "prediction"):
            current = proj.optional_volume(getattr(files, key))
            if current is not None and current.data.shape == vol.data.shape:
                self.layers["labels"] = self.viewer.add_labels(
                    current.data, name=f"{sample} {key}", **where, opacity=0.3,
                    colormap=cmap, visible=False,
                )  # fmt: skip
                break
        unc = proj.optional_volume(files.uncertainty)
        if unc is not None and unc.data.shape == vol.data.shape:
            self.layers["uncertainty"] = add(
                unc.data, name=f"{sample} uncertainty", **where, colormap="magma",
                contrast_limits=(0.0, 1.0), blending="additive", opacity=0.6, visible=False,
            )  # fmt: skip
        suggested = proj.suggestions(sample)
        self.suggestions.clear()
        for i, s in enumerate(suggested, start=1):
            item = QListWidgetItem(f"{i}. z = {s['z']}   uncertainty {s['mean_uncertainty']:.2f}")
            item.setData(256, s["z"])
            self.suggestions.addItem(item)
        if suggested:
            ny, nx = vol.data.shape[1:]
            corner = max(2.0, min(ny, nx) / 20)  # a marker in the slice's corner
            points = np.array([[s["z"], corner, corner] for s in suggested], float)
            self.layers["suggestions"] = self.viewer.add_points(
                points, name="suggested slices", **where, size=max(2.0, corner),
                face_color="yellow", border_color="yellow", symbol="star",
                out_of_slice_display=False,
                features={"rank": np.arange(1, len(suggested) + 1)},
                text={"string": " suggested slice #{rank}", "color": "yellow", "anchor": "lower_left", "size": 10},
            )  # fmt: skip
        ann = proj.annotation(sample, vol)
        layer = self.viewer.add_labels(
            ann, name=f"{sample} annotation", **where, colormap=_colormap(proj.table, values),
            features=_features(proj.classes), opacity=0.8,
        )  # fmt: skip
        layer.mode = "paint"
        layer.brush_size = 3
        self.layers["annotation"] = layer
        self.viewer.layers.selection.active = layer
        self._select_class()
        self._scale_bar().visible = True
        self.viewer.dims.axis_labels = ("z", "y", "x")
        self.go_to_slice(suggested[0]["z"] if suggested else vol.data.shape[0] // 2)
        self._enable(True)
        self.status.setText(
            f"{sample}: {len(suggested)} suggested slices; paint with the label table's classes, "
            f"then Save (→ {files.save_to})."
        )

    def _scale_bar(self):
        overlays = getattr(getattr(self.viewer, "canvas", None), "overlays", None)
        return getattr(overlays, "scale_bar", None) or self.viewer.scale_bar

    def go_to_slice(self, z: int) -> None:
        """Show slice ``z`` (voxels) of the open sample."""
        if self.tomogram is None or z is None:
            return
        self.viewer.dims.set_point(0, int(z) * self.tomogram.spacing_um[0])

    @property
    def current_z(self) -> int:
        """The slice shown (voxels)."""
        z = self.viewer.dims.point[0] / self.tomogram.spacing_um[0]
        return int(np.clip(round(z), 0, self.tomogram.data.shape[0] - 1))

    def _select_class(self, *_):
        layer = self.layers.get("annotation")
        value = self.class_box.currentData()
        if layer is not None and value is not None:
            layer.selected_label = int(value)

    # ------------------------------------------------------------------ save, train, preview

    def _save_clicked(self):
        try:
            self.save()
        except Exception as exc:  # shown to the user: nothing was written
            self.status.setText(f"not saved: {exc}")

    def save(self) -> Path:
        """Write the annotation layer (atomically) where the sample sheet says; returns the path."""
        layer = self.layers["annotation"]
        path = self.project.save_annotation(self.sample, np.asarray(layer.data), self.tomogram)
        n = int(np.count_nonzero(layer.data))
        self.status.setText(f"saved {n} annotated voxels to {path} (named in the sample sheet)")
        return path

    def preview_region(self) -> tuple[slice, slice, slice]:
        """The shown slice (and ``depth`` slices on), at most 256² around the view's centre."""
        shape = self.tomogram.data.shape
        camera = getattr(getattr(self.viewer, "scene", None), "camera", None) or self.viewer.camera
        centre = np.asarray(camera.center[-2:]) / self.tomogram.spacing_um[1:]
        return preview_region(
            shape, self.current_z, centre_yx=centre, size_yx=PREVIEW_SIZE_YX,
            depth=self.depth_box.value(),
        )  # fmt: skip

    def train_and_preview(self, *, threads: int | None = None):
        """Save, train on the saved annotations (in a thread), then preview the region.

        Returns the worker; ``finished`` is emitted with the status when it is done.
        """
        from napari.qt.threading import create_worker

        if self.sample is None:
            return None
        layer = self.layers["annotation"]
        try:
            if np.any(layer.data):
                self.save()
        except Exception as exc:
            self.status.setText(f"not saved: {exc}")
            self.finished.emit(self.status.text())
            return None
        scope = None if self.scope_box.currentText() == TRAIN_SCOPES[0] else [self.sample]
        region = self.preview_region()
        proj, sample, vol = self.project, self.sample, self.tomogram
        threads = threads or min(4, os.cpu_count() or 1)

        def job():
            t0 = time.perf_counter()
            model, card, note = proj.train(scope, out_model=PREVIEW_MODEL, threads=threads)
            t1 = time.perf_counter()
            labels = proj.preview(sample, model, card, region, tomogram=vol)
            return model, card, note, labels, t1 - t0, time.perf_counter() - t1

        self._enable(False)
        self.status.setText("training on the saved annotations …")
        self.worker = create_worker(job)
        self.worker.returned.connect(lambda result: self._show_preview(region, *result))
        self.worker.errored.connect(self._failed)
        self.worker.start()
        return self.worker

    def _failed(self, exc):
        self._enable(True)
        self.status.setText(f"training failed: {exc}")
        self.finished.emit(self.status.text())

    def _show_preview(self, region, model, card, note, labels, t_train, t_preview):
        self.model, self.card = model, card
        scale = np.asarray(self.tomogram.spacing_um)
        where = {"scale": scale, "units": ("um",) * 3}
        start = np.array([r.start for r in region])
        old = self.layers.get("preview")
        if old is not None and old in self.viewer.layers:
            self.viewer.layers.remove(old)
        values = list(card["classes"].values())
        self.layers["preview"] = self.viewer.add_labels(
            labels, name=f"{self.sample} preview", **where, translate=start * scale,
            colormap=_colormap(self.project.table, values), opacity=0.55,
            metadata={"region": [(r.start, r.stop) for r in region]},
        )  # fmt: skip
        self.viewer.layers.selection.active = self.layers["annotation"]
        n = sum(card["n_used_voxels"].values())
        z0, z1 = region[0].start, region[0].stop - 1
        zs = f"{z0}" if z0 == z1 else f"{z0}–{z1}"
        acc = card.get("cv", {}).get("balanced_accuracy")
        text = (
            f"trained on {n} voxels of {card['n_tomograms']} sample(s) in {t_train:.1f} s"
            + (f", CV balanced accuracy {acc:.2f}" if acc is not None else "")
            + f"; preview of z {zs} in {t_preview:.1f} s"
            + (f" ({note})" if note else "")
            + f". Model: {PREVIEW_MODEL}"
        )
        self._enable(True)
        self.status.setText(text)
        self.finished.emit(text)
