"""Saving, loading and exporting models.

``save`` / ``load``: safetensors with the architecture as JSON metadata (never pickle);
``save_npz`` / ``load_npz``: the same content in an ``.npz`` readable with
``allow_pickle=False``; ``export_onnx``: the inference graph for ONNX runtimes;
``atomic_write_bytes``: the temp-file, fsync, rename write that checkpoints also use.
``ModelFileError`` (from :mod:`neuronlab.errors`): any model file that cannot be trusted.
"""

from neuronlab.errors import ModelFileError
from neuronlab.io.atomic import atomic_write_bytes
from neuronlab.io.files import load, load_npz, save, save_npz
from neuronlab.io.onnx_export import export_onnx

__all__ = [
    "ModelFileError",
    "atomic_write_bytes",
    "export_onnx",
    "load",
    "load_npz",
    "save",
    "save_npz",
]
