"""The ``neuronlab`` command line: one click group, one module per family of commands.

Importing this package registers every command on :data:`cli`; ``main`` is the console
script's entry point. The ``playground`` command is registered by name and imported when it
runs (its package holds the sessions and the web server), so ``neuronlab --help`` and the
other commands start without it.
"""

from neuronlab.cli import (  # noqa: F401  (registers the commands)
    diagnose,  # noqa: F401  (registers diagnose; its heavy imports are lazy)
    lr_find,  # noqa: F401  (registers lr-find; its heavy imports are lazy)
    models,
    search,
    train,
)
from neuronlab.cli.app import EXIT_CHECK_FAILED, EXIT_DIVERGED, EXIT_USAGE, cli, main

cli.add_lazy_command(
    "playground",
    "neuronlab.playground.command:playground",
    "Train a network on 2-D data in the browser and watch it learn (a local web page).",
)

__all__ = ["EXIT_CHECK_FAILED", "EXIT_DIVERGED", "EXIT_USAGE", "cli", "main"]
