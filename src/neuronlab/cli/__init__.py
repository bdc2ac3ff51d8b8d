"""The ``neuronlab`` command line: one click group, one module per family of commands.

Importing this package registers every command on :data:`cli`; ``main`` is the console
script's entry point.
"""

from neuronlab.cli import models, search, train  # noqa: F401  (registers the commands)
from neuronlab.cli.app import EXIT_CHECK_FAILED, EXIT_DIVERGED, EXIT_USAGE, cli, main
from neuronlab.playground.command import playground

cli.add_command(playground)

__all__ = ["EXIT_CHECK_FAILED", "EXIT_DIVERGED", "EXIT_USAGE", "cli", "main"]
