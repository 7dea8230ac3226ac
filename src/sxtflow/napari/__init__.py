"""napari plugin: annotate where it helps, train and preview (``sxtflow napari SAMPLE``).

The npe2 manifest (``napari.yaml``) contributes the dock widget
:class:`~sxtflow.napari._widget.AnnotationWidget` ("Annotate and train" in napari's Plugins
menu). The widget only drives :mod:`sxtflow.annotation`, so everything it computes is the
pipeline's own code; it needs the ``napari`` extra (``pip install -e '.[napari]'``).
"""

from __future__ import annotations

import os

__all__ = ["launch", "PLUGIN", "WIDGET"]

#: npe2 plugin name and widget display name (napari.yaml)
PLUGIN = "sxtflow"
WIDGET = "Annotate and train"


def launch(
    sample: str | None = None,
    *,
    configfile: str | os.PathLike = "config/config.yaml",
    samples: str | os.PathLike | None = None,
    workdir: str | os.PathLike = ".",
    viewer=None,
    block: bool = True,
):
    """Open napari with the annotation widget (through the plugin's npe2 manifest).

    Parameters
    ----------
    sample : str, optional
        Sample to open at once (else pick it in the widget).
    configfile : path-like
        Workflow config, relative to ``workdir``.
    samples : path-like, optional
        Sample sheet instead of the config's ``samples``.
    workdir : path-like
        Where the pipeline runs (sheet and results paths are relative to it).
    viewer : napari.Viewer, optional
        Use this viewer (tests); default a new one.
    block : bool
        Run napari's event loop until the window closes.

    Returns
    -------
    (viewer, widget)
    """
    try:
        import napari
    except ImportError as exc:
        raise ImportError("sxtflow napari needs napari") from exc

    viewer = viewer if viewer is not None else napari.Viewer(title="sxtflow")
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    widget.set_config(configfile, samples=samples, workdir=workdir)
    if sample:
        widget.open_sample(sample)
    if block:
        napari.run()
    return viewer, widget
