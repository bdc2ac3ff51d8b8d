"""The ``neuronlab`` command group, its error handling and exit codes.

The CLI only resolves a :class:`~neuronlab.config.RunConfig` (defaults < ``--config`` file <
options), builds the core objects from it and calls them. A user mistake (a bad option value,
an unknown name, a missing or unreadable file, a corrupted model or checkpoint, a typo in a
config file) prints one ``error: ...`` line to stderr and exits with status 2, never a
traceback; a diverging run exits with status 3 and keeps its last good checkpoint. Set
``NEURONLAB_DEBUG=1`` to get the traceback anyway.
"""

from __future__ import annotations

import importlib
import os
import pickle
import sys
from typing import Any

import click

__all__ = ["EXIT_CHECK_FAILED", "EXIT_DIVERGED", "EXIT_USAGE", "cli", "main"]

EXIT_USAGE = 2  # click's own code for usage errors; every user mistake uses it
EXIT_CHECK_FAILED = 1  # `neuronlab check`: a sanity check failed
EXIT_DIVERGED = 3


class _Diverged(click.ClickException):
    exit_code = EXIT_DIVERGED


# Exceptions that mean "the input is wrong", not "neuronlab is broken". ModelFileError,
# CheckpointError and tomllib's decode error are ValueErrors; a CIFAR-10 batch holding anything
# but arrays raises an UnpicklingError; OSError covers missing, unreadable and
# directory-instead-of-file paths; NotImplementedError an export the format cannot express;
# ImportError a missing optional dependency (onnx).
_USER_ERRORS = (
    ValueError,
    TypeError,
    OSError,
    pickle.UnpicklingError,
    NotImplementedError,
    ImportError,
)


# click >= 8.2 raises this for a bare `neuronlab`; it shows the help rather than an error line
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """A click group whose errors are one ``error: ...`` line and a meaningful exit code.

    A subcommand added with :meth:`add_lazy_command` is imported when it is used, not when the
    CLI starts: ``neuronlab --help`` lists it with the help text given there.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str]] = {}
        self._listing = False

    def add_lazy_command(self, name: str, target: str, help: str) -> None:
        """Register the command ``target`` (``"module:attribute"``) as ``name``, imported on
        first use. ``help`` is the command's own help text, or its first paragraph (all that
        the listing of ``neuronlab --help`` shows); tests/test_startup.py holds the listing's
        line equal to the command's own."""
        self.lazy_commands[name] = (target, help)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in self.lazy_commands:
            target, help_text = self.lazy_commands[cmd_name]
            if self._listing:  # a line of the group's help: nothing to import for it
                return click.Command(cmd_name, help=help_text)
            module, _, attribute = target.partition(":")
            cmd = getattr(importlib.import_module(module), attribute)
            self.add_command(cmd, cmd_name)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        debug = bool(os.environ.get("NEURONLAB_DEBUG"))
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _NO_ARGS_IS_HELP as e:
            e.show()
            sys.exit(EXIT_USAGE)
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "neuronlab"
            _fail(f"{e.format_message()} (see '{cmd} --help')", EXIT_USAGE)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", 130)
        except RuntimeError as e:  # a DivergenceError outside `train` (which adds the checkpoint note)
            if debug or not _is_divergence(e):
                raise
            _fail(str(e), EXIT_DIVERGED)
        except _USER_ERRORS as e:
            if debug:
                raise
            msg = str(e) or type(e).__name__
            if isinstance(e, ImportError):
                msg = f"{msg} (install the optional dependency, e.g. pip install 'neuronlab[onnx]')"
            _fail(msg, EXIT_USAGE)
        sys.exit(rv if isinstance(rv, int) else 0)


def _is_divergence(e: BaseException) -> bool:
    """``e`` is a :class:`~neuronlab.train.DivergenceError`, read without importing the
    training package (and NumPy) for commands that never train: if its module is not loaded,
    nothing raised one."""
    errors = sys.modules.get("neuronlab.train.errors")
    return errors is not None and isinstance(e, errors.DivergenceError)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    from neuronlab import engine

    click.echo(f"neuronlab, version {version('neuronlab')}; {engine.describe()}")
    ctx.exit()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Show the version (and whether the compiled kernels run) and exit.")
def cli() -> None:
    """neuronlab: train, check and export NumPy neural networks."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``neuronlab`` console script."""
    cli.main(args=argv, prog_name="neuronlab")


def _format_metrics(m: dict[str, float], what: str) -> str:
    """One line for the metrics of :func:`neuronlab.train.evaluation.evaluate`."""
    if "acc" in m:
        acc = m["acc"]
        return f"{what}: accuracy {acc:.4f} ({acc:.2%}), loss {m['loss']:.4f}"
    return f"{what}: mean squared error {m['error']:.6g}, loss {m['loss']:.6g}"
