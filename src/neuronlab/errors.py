"""neuronlab's exception family: one base class and one subclass per kind of bad input.

Every error neuronlab raises because a *file or setting the user gave* is wrong derives from
:class:`NeuronlabError`, and also from :class:`ValueError`, so ``except ValueError`` keeps
working. The message names the file (or option) and says what is wrong in the user's terms;
the ``neuronlab`` command prints it as one ``error: ...`` line and exits with status 2.

===================  =====================================================================
class                raised when
===================  =====================================================================
DataError            a data file (``.npz``, ``.npy``, a CIFAR-10 batch) is damaged,
                     hostile (zip bomb, pickled objects, lying header) or not data at all
ModelFileError       a model file is not a neuronlab model, truncated, corrupted (its
                     digest does not match), of an unsupported dtype or version, or claims
                     more than it holds
ConfigError          a TOML config or search-space file cannot be read (bad TOML, nested
                     too deeply, not a regular file)
CheckpointError      a training checkpoint cannot be used (``neuronlab.train`` re-exports it)
===================  =====================================================================

Missing files are :class:`FileNotFoundError` (an ``OSError``), as everywhere in Python.
"""

from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DataError", "ModelFileError", "NeuronlabError"]


class NeuronlabError(Exception):
    """Base class of the errors neuronlab raises for bad files and settings."""


class DataError(NeuronlabError, ValueError):
    """A data file is damaged, hostile or not the data it should be; nothing was run."""


class ModelFileError(NeuronlabError, ValueError):
    """A model file is unreadable: not the expected format, truncated, corrupted (its digest
    does not match), of an unsupported dtype or version, or its arrays do not match its
    architecture."""


class ConfigError(NeuronlabError, ValueError):
    """A configuration file (TOML) cannot be read: invalid, nested too deeply, too large."""


class CheckpointError(NeuronlabError, ValueError):
    """A checkpoint cannot be used: not a checkpoint, truncated, corrupted, inconsistent, or
    written for a different model or data layout. The message names the file or the field."""
