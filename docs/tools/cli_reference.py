"""Write the command-line reference of ``neuronlab`` as one Markdown page.

The page is generated from the click objects themselves (:data:`neuronlab.cli.cli`), so it
cannot drift from ``neuronlab --help``: every command, the lazily imported ones included
(``playground`` is imported here, as it is when it runs), with its usage line, its help text
and its options as click formats them.

Command line: ``python docs/tools/cli_reference.py OUT.md``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

PROG = "neuronlab"
# Markdown would read these as emphasis, code, links or HTML in plain help text.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def escape(text: str) -> str:
    """Plain text as Markdown that shows it verbatim."""
    return _SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


def _paragraphs(help_text: str) -> list[str]:
    """click's help text as paragraphs; a ``\\b`` paragraph keeps its line breaks."""
    out = []
    for block in re.split(r"\n\s*\n", click.unstyle(help_text).strip()):
        lines = [line.strip() for line in block.splitlines()]
        if lines and lines[0] == "\b":
            out.append("  \n".join(escape(line) for line in lines[1:]))
        else:
            out.append(escape(" ".join(lines)))
    return out


def _command(cmd: click.Command, ctx: click.Context, depth: int) -> list[str]:
    path = ctx.command_path
    lines = [f"{'#' * depth} `{path}`", ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```text", f"{path} {usage}".rstrip(), "```", ""]
    if cmd.help:
        for para in _paragraphs(cmd.help):
            lines += [para, ""]
    arguments = [p for p in cmd.get_params(ctx) if isinstance(p, click.Argument)]
    if arguments:
        lines += ["**Arguments**", ""]
        for arg in arguments:
            meta = arg.make_metavar(ctx) if _takes_ctx(arg.make_metavar) else arg.make_metavar()
            required = "required" if arg.required else "optional"
            lines.append(f"- `{meta}` ({required})")
        lines.append("")
    records = [
        (p, r) for p in cmd.get_params(ctx) if (r := p.get_help_record(ctx)) is not None
    ]
    if records:
        lines += ["**Options**", ""]
        for _param, (names, text) in records:
            lines.append(f"- `{names}`" + (f": {escape(' '.join(text.split()))}" if text else ""))
        lines.append("")
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            with sub.make_context(name, [], parent=ctx, resilient_parsing=True) as sub_ctx:
                lines += _command(sub, sub_ctx, depth + 1)
    return lines


def _takes_ctx(method: object) -> bool:
    import inspect

    return "ctx" in inspect.signature(method).parameters  # click >= 8.2


def markdown(group: click.Command | None = None) -> str:
    """The reference page of ``group`` (default: the ``neuronlab`` command) as Markdown.

    Parameters
    ----------
    group : click.Command, optional
        The root command; its subcommands are walked with ``list_commands`` and
        ``get_command``, which import lazily registered commands.

    Returns
    -------
    str
    """
    if group is None:
        from neuronlab.cli import cli as group
    with group.make_context(PROG, [], resilient_parsing=True) as ctx:
        names = group.list_commands(ctx) if isinstance(group, click.Group) else []
        head = [
            "# Command line",
            "",
            f"One entry point, `{PROG}`, with {len(names)} commands: "
            + ", ".join(f"[`{n}`](#{PROG}-{n})" for n in names)
            + ". A user mistake prints one `error: ...` line and exits with status 2; a "
            "diverging run exits with status 3. This page is generated from the commands "
            f"themselves (`{PROG} COMMAND --help` prints the same).",
            "",
        ]
        return "\n".join(head + _command(group, ctx, 2)).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """``cli_reference.py OUT.md``: write the page."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: cli_reference.py OUT.md")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    out = Path(args[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(), encoding="utf-8")
    print(f"command-line reference -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
