"""The trained network as files: a safetensors model file (``nl.save``) and an ONNX graph
with probabilities (``nl.export_onnx``), written from a copy of the session's model.

:func:`snapshot_model` copies the model (architecture from its config, then its parameters
and buffers), so the files are written outside the training thread while training goes on.
For an uploaded CSV the copy carries the upload's rescaling as its preprocessor: both files
then take the CSV's own coordinates.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from neuronlab.io import export_onnx, save
from neuronlab.layers import Sequential
from neuronlab.playground.settings import UPLOAD

__all__ = ["FORMATS", "model_bytes", "snapshot_model", "snapshot_run"]

#: format -> (file name the browser saves, media type)
FORMATS: dict[str, tuple[str, str]] = {
    "safetensors": ("playground.safetensors", "application/octet-stream"),
    "onnx": ("playground.onnx", "application/octet-stream"),
}


def snapshot_model(model: Sequential, preprocessor: Any = None) -> Sequential:
    """A new Sequential with ``model``'s layers, parameters and buffers (copies)."""
    copy = Sequential.from_config(model.get_config())
    copy.set_arrays({**model.params, **model.buffers})
    copy.preprocessor = preprocessor
    return copy


def snapshot_run(trainer: Any, settings: Any, n_classes: int, upload: Any
                 ) -> tuple[Sequential, dict[str, Any]]:
    """A copy of ``trainer``'s model (with ``upload``'s rescaling as its preprocessor when the
    session trains on uploaded points) and the metadata its file carries."""
    uploaded = settings.dataset == UPLOAD and upload is not None
    meta = {"loss": "softmax", "source": "neuronlab playground",
            "epoch": len(trainer.history.epochs), "step": trainer.step, "classes": n_classes,
            "input": "the CSV's x, y" if uploaded else "the playground's x, y",
            "settings": settings.to_dict()}
    return snapshot_model(trainer.model, upload.scaler if uploaded else None), meta


def model_bytes(model: Sequential, fmt: str, metadata: dict[str, Any]) -> bytes:
    """The bytes of ``model`` saved in ``fmt`` ("safetensors" or "onnx"), written through
    the library's own writers into a temporary folder."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="neuronlab-export-") as folder:
        path = os.path.join(folder, FORMATS[fmt][0])
        if fmt == "safetensors":
            save(model, path, metadata=metadata)
        else:
            export_onnx(model, path, probabilities=True, loss="softmax")
        with open(path, "rb") as f:
            return f.read()
