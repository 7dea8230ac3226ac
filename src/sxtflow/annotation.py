"""Manual annotation where it helps: the annotation loop behind ``sxtflow napari``.

The pipeline knows where one more annotated slice would help most
(``results/{sample}/annotation_suggestions.json``, from the uncertainty map). This module is
the loop around it, without any GUI: open a sample (tomogram, current labels, uncertainty,
suggested slices), save painted annotations on the tomogram's grid into the sample sheet,
train with the pipeline's own code on every saved annotation and preview the predicted
labels of a slice. The napari plugin (:mod:`sxtflow.napari`) only calls this, and so do tests.

One code path with the pipeline:

* training is :func:`sxtflow.stages.run_train_tomograms`, the pipeline's ``classify.train``
  on features equal to the feature store's (computed only where annotated), with the
  config's ``classes``, ``features``, ``train`` and ``seed``;
* the preview is :func:`sxtflow.segment.predict_volume` with the predict rule's block,
  field-of-view mask and a ``region``: features read their halo from the whole tomogram, so
  the preview equals the same region of ``prediction.mrc`` for the same model exactly.

Files: a sample's annotation goes where its sheet row says; a sample without one (or with
``auto``, the virtual annotator's output, or a non-MRC file) gets ``annotations/<sample>.mrc``
and the sheet row is rewritten to name it (:func:`sxtflow.samples.set_value`). The preview
model is ``results/napari/classifier.skops``, apart from the pipeline's model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .core import InputError, Volume
from .labels import LabelTable, load_labels, locate_labels

__all__ = [
    "label_table",
    "load_config",
    "SampleFiles",
    "AnnotationProject",
    "preview_region",
    "ANNOTATION_DIR",
    "PREVIEW_MODEL",
]

log = logging.getLogger("sxtflow")

#: Where new annotations are written (relative to the working directory).
ANNOTATION_DIR = "annotations"
#: The model "train and preview" writes (apart from the pipeline's results/model/).
PREVIEW_MODEL = "results/napari/classifier.skops"
_MRC = {".mrc", ".rec", ".map"}
#: memory that training's feature blocks may keep between "train and preview" clicks
CACHE_BYTES = 2 * 1024**3


def label_table(
    path: str | os.PathLike | None = None, workdir: str | os.PathLike = "."
) -> LabelTable:
    """The label table annotations use (names, values, colours), as the pipeline finds it:
    the config's ``labels`` (``path``), else ``resources/labels.tsv`` of ``workdir``, else the
    bundled one (:func:`sxtflow.labels.locate_labels`)."""
    return load_labels(locate_labels(path, workdir))


def load_config(
    configfile: str | os.PathLike, overrides: Mapping | None = None
) -> dict[str, object]:
    """The workflow config (YAML) with top-level ``overrides`` (as ``snakemake --config``)."""
    import yaml

    path = Path(configfile)
    if not path.exists():
        raise InputError(path, "config file does not exist")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise InputError(path, "the config must be a mapping of keys")
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "samples" not in config:
        raise InputError(path, "no 'samples' key")
    return config


def preview_region(
    shape: Sequence[int],
    z: int,
    *,
    centre_yx: Sequence[float] | None = None,
    size_yx: Sequence[int] = (256, 256),
    depth: int = 1,
) -> tuple[slice, slice, slice]:
    """A box of ``depth`` slices from ``z``, at most ``size_yx`` wide, around ``centre_yx``.

    Parameters
    ----------
    shape : sequence of 3 int
        Volume shape ``(z, y, x)``.
    z : int
        First slice.
    centre_yx : sequence of 2 float, optional
        Centre in voxels (default the slice's centre); the box is shifted to stay inside.
    size_yx : sequence of 2 int
        Largest extent in y and x (voxels); a whole slice when it is smaller.
    depth : int
        Slices.

    Examples
    --------
    >>> preview_region((10, 100, 300), 4, centre_yx=(10, 290), size_yx=(64, 64))
    (slice(4, 5, None), slice(0, 64, None), slice(236, 300, None))
    """
    nz, ny, nx = (int(n) for n in shape)
    z0 = int(np.clip(z, 0, nz - 1))
    out = [slice(z0, min(nz, z0 + max(1, int(depth))))]
    centre = (ny / 2, nx / 2) if centre_yx is None else centre_yx
    for n, c, size in zip((ny, nx), centre, size_yx, strict=True):
        size = min(n, int(size))
        start = int(np.clip(round(float(c) - size / 2), 0, n - size))
        out.append(slice(start, start + size))
    return tuple(out)


@dataclass(frozen=True)
class SampleFiles:
    """Where a sample's files are (paths relative to the working directory)."""

    sample: str
    tomogram: Path
    prediction: Path
    labels: Path
    uncertainty: Path
    suggestions: Path
    probabilities: Path
    #: the annotation the sheet names (``auto``: the virtual annotator's), or None
    annotation: Path | None
    #: where saving writes (the sheet's MRC path, else ``annotations/<sample>.mrc``)
    save_to: Path


class AnnotationProject:
    """A workflow config and its sample sheet, seen from the annotation loop.

    Parameters
    ----------
    config : mapping
        The workflow config (:func:`load_config`): ``samples``, ``classes``, ``seed``,
        ``features``, ``train``, ``predict`` as the pipeline reads them.
    workdir : path-like
        The working directory (where the pipeline runs; sheet paths are relative to it).
    """

    def __init__(self, config: Mapping, workdir: str | os.PathLike = "."):
        from .options import with_defaults
        from .stages import feature_spec

        self.config = with_defaults(config)  # the pipeline's defaults for keys left out
        self.workdir = Path(workdir)
        self.sheet_path = self.workdir / str(self.config["samples"])
        self.table = label_table(self.config["labels"], self.workdir)
        self.classes = self.table.class_values(self.config["classes"])
        feats = dict(self.config["features"])
        self.spec = feature_spec(**feats)
        self.feature_block = tuple(feats["block"])
        self.predict_block = tuple(self.config["predict"]["block"])
        self.train_options = dict(self.config["train"])
        self.seed = int(self.config["seed"])
        #: feature blocks computed for training, kept while they fit :data:`CACHE_BYTES`
        self._feature_cache: dict = {}

    @classmethod
    def from_configfile(
        cls,
        configfile: str | os.PathLike = "config/config.yaml",
        workdir: str | os.PathLike = ".",
        **overrides,
    ) -> AnnotationProject:
        """Read ``configfile`` (relative to ``workdir``) with top-level overrides."""
        path = Path(workdir) / configfile
        return cls(load_config(path, overrides), workdir)

    # ------------------------------------------------------------------ sheet and files

    @property
    def sheet(self):
        """The sample sheet, checked (:func:`sxtflow.samples.load_sample_sheet`), read anew."""
        from .samples import load_sample_sheet

        return load_sample_sheet(self.sheet_path, base_dir=self.workdir)

    @property
    def samples(self) -> list[str]:
        return list(self.sheet.index)

    def _row(self, sample: str):
        sheet = self.sheet
        if sample not in sheet.index:
            raise InputError(
                self.sheet_path, f"no sample {sample!r}; samples: {', '.join(sheet.index)}"
            )
        return sheet.loc[sample]

    def files(self, sample: str) -> SampleFiles:
        """The sample's files (see :class:`SampleFiles`)."""
        row = self._row(sample)
        res = Path("results") / sample
        tomogram = res / "tomogram.mrc"
        if not (self.workdir / tomogram).exists() and row["kind"] == "tomogram":
            tomogram = Path(row["input"])
        value = row["annotation"]
        annotation = None
        save_to = Path(ANNOTATION_DIR) / f"{sample}.mrc"
        if value == "auto":
            annotation = res / "annotation.mrc"
        elif value:
            annotation = Path(value)
            if annotation.suffix.lower() in _MRC:
                save_to = annotation
        return SampleFiles(
            sample=sample,
            tomogram=tomogram,
            prediction=res / "prediction.mrc",
            labels=res / "labels.mrc",
            uncertainty=res / "uncertainty.mrc",
            suggestions=res / "annotation_suggestions.json",
            probabilities=res / "probabilities.zarr",
            annotation=annotation,
            save_to=save_to,
        )

    def path(self, relative: str | os.PathLike) -> Path:
        """A sheet/results path resolved against the working directory."""
        return self.workdir / relative

    def tomogram(self, sample: str) -> Volume:
        """The sample's tomogram (LAC µm⁻¹) with its voxel size, or a clear error."""
        files = self.files(sample)
        path = self.path(files.tomogram)
        if not path.exists():
            raise InputError(
                path,
                f"no tomogram yet; reconstruct it first: snakemake --cores 2 {files.tomogram}",
            )
        row = self._row(sample)
        voxel = row["voxel_nm"] if np.isfinite(row["voxel_nm"]) else None
        if files.tomogram.name == "tomogram.mrc":
            voxel = None  # the pipeline's tomogram carries its voxel size
        return io.read_volume(path, voxel)

    def optional_volume(self, path: str | os.PathLike) -> Volume | None:
        """A result volume (labels, uncertainty …) if the pipeline has made it, else None."""
        full = self.path(path)
        return io.read_volume(full) if full.exists() else None

    def suggestions(self, sample: str) -> list[dict]:
        """The suggested slices ``[{"z": int, "mean_uncertainty": float, "score": float}, …]``,
        most useful first (``score``: :func:`sxtflow.segment.suggest_slices`'s value of the
        slice; None in files written before it was recorded)."""
        path = self.path(self.files(sample).suggestions)
        if not path.exists():
            return []
        data = io.read_json(path)
        try:
            return [
                {
                    "z": int(s["z"]),
                    "mean_uncertainty": float(s["mean_uncertainty"]),
                    "score": None if s.get("score") is None else float(s["score"]),
                }
                for s in data["slices"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"not an annotation-suggestions file ({exc})") from exc

    def annotation(self, sample: str, tomogram: Volume | None = None) -> np.ndarray:
        """The sample's current annotation (uint8, the tomogram's shape); zeros if none."""
        from .segment import read_labels_on_grid

        vol = tomogram if tomogram is not None else self.tomogram(sample)
        files = self.files(sample)
        if files.annotation is not None and self.path(files.annotation).exists():
            return read_labels_on_grid(self.path(files.annotation), vol.data.shape, vol.voxel_nm)
        return np.zeros(vol.data.shape, np.uint8)

    def annotated(self) -> list[str]:
        """Samples whose annotation file exists."""
        out = []
        for sample in self.samples:
            files = self.files(sample)
            if files.annotation is not None and self.path(files.annotation).exists():
                out.append(sample)
        return out

    # ------------------------------------------------------------------ save

    def save_annotation(self, sample: str, data, tomogram: Volume | None = None) -> Path:
        """Write a painted annotation atomically and name it in the sample sheet.

        Parameters
        ----------
        sample : str
        data : array-like, shape (z, y, x), integer
            0 = not annotated, else values of the config's classes.
        tomogram : Volume, optional
            The sample's tomogram if already read (its grid and voxel size are used).

        Returns
        -------
        Path
            The file written (MRC, the tomogram's voxel size in the header), relative to
            the working directory as the sheet names it.

        Raises
        ------
        InputError
            Wrong shape, or values that are not classes (nothing is written).
        """
        vol = tomogram if tomogram is not None else self.tomogram(sample)
        files = self.files(sample)
        target = files.save_to
        data = np.asarray(data)
        if data.shape != vol.data.shape:
            raise InputError(
                target,
                f"annotation shape {data.shape} differs from the tomogram's {vol.data.shape}",
            )
        if data.dtype.kind not in "iub":
            raise InputError(target, f"annotation must hold label values, got {data.dtype}")
        values = {int(v) for v in np.unique(data)} - {0}
        unknown = sorted(values - set(self.classes.values()))
        if unknown:
            known = ", ".join(f"{n}={v}" for n, v in self.classes.items())
            raise InputError(target, f"label values {unknown} are not classes ({known})")
        io.write_volume(self.path(target), Volume(data.astype(np.uint8), vol.voxel_nm))
        row = self._row(sample)
        if row["annotation"] != target.as_posix():
            from .samples import set_value

            set_value(self.sheet_path, sample, "annotation", target.as_posix())
        n = int(np.count_nonzero(data))
        log.info("saved %d annotated voxels of %s to %s", n, sample, target)
        return target

    # ------------------------------------------------------------------ train and preview

    def train(
        self,
        samples: Sequence[str] | None = None,
        *,
        out_model: str | os.PathLike | None = PREVIEW_MODEL,
        threads: int = 1,
    ):
        """Train the pipeline's classifier on the saved annotations.

        Parameters
        ----------
        samples : sequence of str, optional
            Whose annotations; default every sample with an annotation file.
        out_model : path-like or None
            Where the model goes (relative to the working directory); None = not saved.
        threads : int

        Returns
        -------
        model, card, note
            ``note`` says which classes were left out for lack of annotated voxels (a
            preview may train on the classes painted so far; the pipeline needs all).
        """
        from .stages import run_train_tomograms

        samples = list(self.annotated() if samples is None else samples)
        if not samples:
            raise InputError(self.sheet_path, "no sample has a saved annotation yet")
        tomograms, annotations, present = [], [], set()
        for s in samples:
            files = self.files(s)
            if files.annotation is None or not self.path(files.annotation).exists():
                raise InputError(self.sheet_path, f"sample {s!r} has no saved annotation")
            vol = self.tomogram(s)
            present |= {int(v) for v in np.unique(self.annotation(s, vol))}
            tomograms.append(self.path(files.tomogram))
            annotations.append(self.path(files.annotation))
        classes = {n: v for n, v in self.classes.items() if v in present}
        if len(classes) < 2:
            raise ValueError("paint at least two classes before training")
        left = [n for n in self.classes if n not in classes]
        note = f"not annotated yet, left out: {', '.join(left)}" if left else ""
        model, card = run_train_tomograms(
            tomograms,
            annotations,
            None if out_model is None else self.path(out_model),
            classes=classes,
            spec=self.spec,
            labels=self.table,
            block=self.feature_block,
            seed=self.seed,
            threads=threads,
            cache=self._feature_cache,
            **self.train_options,
        )
        held = sum(a.nbytes for blocks in self._feature_cache.values() for a in blocks.values())
        if held > CACHE_BYTES:
            self._feature_cache.clear()
        return model, card, note

    def preview(
        self,
        sample: str,
        model,
        card: dict,
        region: tuple[slice, slice, slice],
        *,
        tomogram: Volume | None = None,
        threads: int = 1,
    ) -> np.ndarray:
        """Predicted labels of ``region``: the predict rule's code, block and mask.

        Equals ``prediction.mrc[region]`` of the pipeline run with the same model, and
        refuses what the predict rule refuses (a tomogram whose voxel size differs from the
        model's, :func:`sxtflow.stages.check_model_voxel`).
        """
        from .core import field_of_view
        from .segment import predict_volume
        from .stages import check_model_voxel

        vol = tomogram if tomogram is not None else self.tomogram(sample)
        check_model_voxel(card, vol.voxel_nm, tomogram_path=sample)
        labels, _ = predict_volume(
            vol.data,
            model,
            card,
            block=self.predict_block,
            n_jobs=threads,
            mask=field_of_view(vol),
            region=region,
        )
        return labels
