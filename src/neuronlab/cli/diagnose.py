"""``neuronlab diagnose``: the diagnosis of a run folder, and with ``--verify`` its test.

The diagnosis is :func:`neuronlab.babysit.diagnose.diagnose` over the history rebuilt from
the folder's ``metrics.jsonl``; ``--verify`` replays each finding's proposed change against
the run's own setting (:func:`neuronlab.babysit.verify.verify`) and writes
``RUN_DIR/verify.json``. Everything heavy is imported when the command runs.
"""

from __future__ import annotations

import json
from typing import Any

import click

from neuronlab.cli.app import cli

__all__ = ["diagnose"]


@cli.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(file_okay=True, dir_okay=True))
@click.option(
    "--verify", "replay", is_flag=True,
    help="Test each finding's proposed change: replay a short window from the run's checkpoint "
    "(or from scratch) with and without it, and write RUN_DIR/verify.json.",
)
@click.option(
    "--steps", default=100, show_default=True, type=click.IntRange(min=1, max=1_000_000),
    help="Optimizer steps of each replay.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option(
    "--progress/--no-progress", default=None,
    help="Progress bar over the replays [on when stderr is a terminal].",
)
def diagnose(run_dir: str, replay: bool, steps: int, as_json: bool,
             progress: bool | None) -> None:
    """Diagnose a run from its folder; --verify checks each finding by replaying its fix."""
    from neuronlab.babysit.diagnose import diagnose as run_rules
    from neuronlab.babysit.diagnose import format_findings
    from neuronlab.babysit.verify import VERIFY_FILE, check_run_dir, load_history, verify

    path = check_run_dir(run_dir)  # no checkpoint (diverged in epoch 1): replays from scratch
    findings = run_rules(load_history(path))
    verifications = verify(path, findings, steps=steps, progress=progress) if replay else None
    if as_json:
        doc: dict[str, Any] = {
            "run": str(path),
            "findings": [f.to_dict() for f in findings],
            "verifications": None if verifications is None else [v.to_dict() for v in verifications],
            "verify_file": str(path / VERIFY_FILE) if replay else None,
        }
        click.echo(json.dumps(doc, indent=2, allow_nan=False))
        return
    click.echo(format_findings(findings))
    if verifications is None:
        return
    if findings:
        click.echo(f"Verification ({steps} steps per replay, both settings from the same state "
                   "on the same batches):")
    for i, f in enumerate(findings, 1):
        mine = [v for v in verifications if v.rule == f.rule]
        if not mine:
            from neuronlab.babysit.verify import CHANGES

            why = ("the proposed change does not apply to this run" if f.rule in CHANGES
                   else "nothing to replay for this rule")
            click.echo(f"{i}. {f.rule}: not replayed ({why})")
        for v in mine:
            click.echo(f"{i}. {f.rule}: {v.summary()}")
    click.echo(f"verify: {path / VERIFY_FILE}", err=True)
