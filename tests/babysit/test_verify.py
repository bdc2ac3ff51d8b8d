"""Diagnoses that test themselves (:mod:`neuronlab.babysit.verify`): the replays, what they
write (``verify.json`` and nothing else), the verdict's margin, the change table, reading a
hostile ``verify.json`` and the plot. Runs are real ``neuronlab train`` runs on digits,
made in-process and kept short (2 epochs)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from neuronlab.babysit import verify as vf
from neuronlab.babysit.findings import Finding
from neuronlab.babysit.verify import (
    CHANGES,
    HELP_MARGIN,
    VERIFY_FILE,
    Verification,
    VerifyFileError,
    load_history,
    load_verifications,
    plot_verification,
    verify,
)
from neuronlab.cli import cli
from neuronlab.config import RunConfig
from neuronlab.train import History


def train_run(runs: Path, name: str, *options: str, expect: int = 0) -> Path:
    """``neuronlab train`` in-process (no report, no bar): the run folder."""
    args = ["train", "--no-report", "--no-progress", "--runs-dir", str(runs), "--name", name,
            *options]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == expect, result.output
    return runs / name


def digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def hot_run(tmp_path_factory) -> Path:
    """Learning rate 30x the default (Adam 0.03), 2 epochs: checkpoints at steps 37 and 74."""
    return train_run(tmp_path_factory.mktemp("runs"), "hot", "--epochs", "2", "--lr", "0.03")


@pytest.fixture
def run(hot_run, tmp_path) -> Path:
    """A private copy of the hot run (tests write verify.json or remove files in it)."""
    return Path(shutil.copytree(hot_run, tmp_path / "hot"))


# -- the replays ---------------------------------------------------------------------------------
def test_verify_confirms_a_lower_lr_and_writes_verify_json_only(run):
    before = digest(run)
    found = verify(run, steps=30)
    after = digest(run)
    assert set(after) - set(before) == {VERIFY_FILE}
    assert {k: v for k, v in after.items() if k != VERIFY_FILE} == before  # checkpoints too
    assert [v.rule for v in found] == ["lr_too_high"]
    v = found[0]
    assert v.change == "lr 0.03 → 0.003" and v.start.startswith("checkpoint step ")
    assert v.steps == 30 and v.metric == "validation loss" and v.start_step in (37, 74)
    assert v.helped and not v.original_diverged and not v.changed_diverged
    assert v.improvement == pytest.approx((v.original - v.changed) / v.original)
    assert v.improvement >= HELP_MARGIN
    for arm in ("original", "changed"):
        steps = [s for s, _ in v.curves[arm]]
        assert steps[0] == 0 and steps[-1] == 30 and steps == sorted(set(steps))
    assert v.curves["original"][-1][1] == v.original
    assert v.curves["original"][0] == v.curves["changed"][0]  # one start, one state
    assert load_verifications(run) == found
    doc = json.loads((run / VERIFY_FILE).read_text())
    assert doc["format"] == "neuronlab.verify" and doc["version"] == 1 and doc["steps"] == 30
    assert "lowered the validation loss" in v.summary() and v.summary().startswith("verified")


def test_the_original_arm_replays_the_run_itself(run):
    """Resuming epoch 0's checkpoint with the run's own setting for one epoch's steps ends
    exactly where the run's epoch 1 ended: same state, same batches, same evaluator."""
    epochs = load_history(run).epochs
    last = max((run / "checkpoints").iterdir())
    assert last.name.startswith("epoch-0001")
    last.unlink()  # the private copy now ends at epoch 0's checkpoint
    per_epoch = epochs[0]["step"]
    (v, _) = verify(run, ["lr_too_low"], steps=per_epoch)  # lr x 10 and lr x 100
    assert v.start == f"checkpoint step {per_epoch}"
    assert v.curves["original"][0][1] == pytest.approx(epochs[0]["val_loss"], rel=1e-6)
    assert v.original == pytest.approx(epochs[1]["val_loss"], rel=1e-6)


def test_architecture_changes_carry_the_checkpoint_onto_the_changed_network(run):
    before = digest(run)
    found = verify(run, [Finding("overfitting", "warning", ""), {"rule": "dead_relu"}], steps=6)
    assert [(v.rule, v.change) for v in found] == [
        ("overfitting", "l2 0 → 0.001"), ("overfitting", "dropout 0 → 0.5"),
        ("dead_relu", "activation relu → leaky_relu"), ("dead_relu", "lr 0.03 → 0.003")]
    assert len({v.start for v in found}) == 1 and found[0].start.startswith("checkpoint")
    start = found[0].curves["original"][0][1]
    by_change = {v.change: v for v in found}
    # dropout is the identity in inference mode: the same weights score the same
    assert by_change["dropout 0 → 0.5"].curves["changed"][0][1] == start
    # LeakyReLU lets 1% of the negative part through: nearly the same network
    assert by_change["activation relu → leaky_relu"].curves["changed"][0][1] == pytest.approx(
        start, rel=0.2)
    # the original arm is shared by the alternatives of one start
    assert len({json.dumps(v.curves["original"]) for v in found}) == 1
    # the carried checkpoints live in a temporary folder, not in the run
    assert {k: v for k, v in digest(run).items() if k != VERIFY_FILE} == before


def test_scratch_replays_start_from_the_runs_initialisation(run):
    # ReLU with He init already: the init change does not apply; a wider net does
    found = verify(run, ["saturation", "underfitting", "initial_loss", "no_such_rule"], steps=5)
    assert [(v.rule, v.change, v.start, v.start_step) for v in found] == [
        ("underfitting", "hidden 256 → 512", "scratch", 0)]
    first = found[0].curves["original"][0][1]
    assert first == pytest.approx(math.log(10), rel=0.05)  # the untrained net guesses


def test_a_run_that_diverged_is_replayed_from_its_last_good_checkpoint(tmp_path):
    run = train_run(tmp_path, "sgd", "--epochs", "4", "--optimizer", "sgd", "--lr", "3",
                    expect=3)
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts  # the checkpoints before the divergence are kept
    (v,) = verify(run, ["lr_too_high"], steps=80)
    assert v.helped and not v.changed_diverged and v.changed is not None
    # a checkpoint counts as good only when its loss is within 10x the run's initial loss:
    # at lr 3 the epochs before the divergence already had losses of ~1e16, so the replay
    # starts from the run's initial weights
    history = load_history(run)
    ceiling = 10 * history.info["initial_loss"]
    good = {e["step"] for e in history.epochs if (e.get("val_loss") or math.inf) <= ceiling}
    assert v.start_step in good or (v.start == "scratch" and v.start_step == 0)
    assert load_verifications(run) == [v]


def test_refuses_a_folder_that_is_not_a_run_or_has_no_checkpoint(run, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        verify(tmp_path / "hot" / "checkpoints")
    with pytest.raises(FileNotFoundError, match="not found"):
        verify(tmp_path / "missing")
    with pytest.raises(ValueError, match="steps"):
        verify(run, steps=0)
    with pytest.raises(ValueError, match="seed"):
        verify(run, seed=-1)
    assert not (run / VERIFY_FILE).exists()


def test_a_run_without_checkpoints_is_replayed_from_scratch(run):
    """A run that diverged in its first epoch has no checkpoint: its replays start from the
    run's initial weights instead of being refused."""
    shutil.rmtree(run / "checkpoints")
    (v,) = verify(run, ["lr_too_low"], steps=20)[:1]
    assert v.start == "scratch" and v.start_step == 0
    assert (run / VERIFY_FILE).exists()


def test_no_findings_still_writes_an_empty_verify_json(run):
    assert verify(run, []) == []
    assert load_verifications(run / VERIFY_FILE) == []


def test_the_progress_bar_and_the_temporary_folder(run, capsys):
    import tempfile

    def private() -> set[str]:
        return {p.name for p in Path(tempfile.gettempdir()).glob("neuronlab-verify-*")}

    before = private()
    found = verify(run, ["dead_relu"], steps=3, progress=True)
    assert len(found) == 2
    assert "replays" in capsys.readouterr().err  # 3 replays: one original, two changes
    assert private() <= before  # the carried checkpoint's folder is gone


# -- the verdict -----------------------------------------------------------------------------
def _arm(values: list[float | None], diverged: bool = False) -> vf._Arm:
    n = len(values) - 1
    return vf._Arm(tuple((round(100 * i / n), v) for i, v in enumerate(values)), diverged)


def _verdict(original: vf._Arm, changed: vf._Arm) -> Verification:
    return vf._verdict("lr_too_high", "lr 1 → 0.1", vf._Start(), 100, "validation loss",
                       original, changed)


@pytest.mark.parametrize("changed, helped", [
    ([2.0, 1.8, 1.5, 1.2, 1.0, 0.90], True),    # 10% lower at the end and over the tail
    ([2.0, 1.8, 1.5, 1.2, 1.0, 0.97], False),   # 3%: within the margin
    ([2.0, 1.8, 1.5, 1.2, 1.3, 0.90], False),   # lucky last point, worse before it
    ([2.0, 1.8, 1.5, 1.2, 1.1, 1.05], False),   # worse
])
def test_a_change_helps_only_by_the_margin_at_the_end_and_over_the_last_quarter(changed, helped):
    v = _verdict(_arm([2.0, 1.8, 1.5, 1.2, 1.0, 1.0]), _arm(changed))
    assert v.helped is helped
    assert v.summary().startswith("verified" if helped else "not confirmed")
    if helped:
        assert "(−10%)" in v.summary()
    else:
        assert f"margin is {HELP_MARGIN:.0%}" in v.summary()


def test_divergence_decides_when_one_arm_diverges():
    held = _verdict(_arm([5.0, 1e3, None], diverged=True), _arm([5.0, 4.0, 3.0]))
    assert held.helped and held.original is None and held.improvement is None
    lost = _verdict(_arm([5.0, 1e3, None], diverged=True), _arm([5.0, 40.0, 60.0]))
    assert not lost.helped  # survived, but got worse than where it started
    worse = _verdict(_arm([2.0, 1.0, 0.5]), _arm([2.0, None], diverged=True))
    assert not worse.helped and "the change diverged" in worse.summary()
    both = _verdict(_arm([2.0, None], diverged=True), _arm([2.0, None], diverged=True))
    assert not both.helped and "both settings diverged" in both.summary()
    json.dumps([v.to_dict() for v in (held, lost, worse, both)], allow_nan=False)


def test_the_last_good_checkpoint_is_the_best_one_before_divergence():
    ckpts = [(37, "/r/checkpoints/epoch-0000-step-000000037.safetensors"),
             (60, "/r/checkpoints/step-000000060.safetensors"),
             (74, "/r/checkpoints/epoch-0001-step-000000074.safetensors")]
    h = History.from_dict({"loss": [3.0] * 55 + [1.5] * 20, "lr": [0.1] * 75, "epochs": [
        {"epoch": 0, "step": 37, "loss": 3.0, "val_loss": 2.0},
        {"epoch": 1, "step": 74, "loss": 1.5, "val_loss": 1.0}]})
    # a mid-epoch checkpoint has no epoch metric: all are ranked by the steps' objective
    assert [s for s, _ in vf._good_checkpoints(ckpts, h)] == [74, 60, 37]
    h.loss[64:74] = [9.0] * 10
    assert [s for s, _ in vf._good_checkpoints(ckpts, h)] == [60, 37, 74]
    # epoch-end checkpoints only: ranked by the validation loss, the latest first at a tie
    ends = [ckpts[0], ckpts[2]]
    assert [s for s, _ in vf._good_checkpoints(ends, h)] == [74, 37]
    h.epochs[1]["val_loss"] = 2.0
    assert [s for s, _ in vf._good_checkpoints(ends, h)] == [74, 37]
    h.info["diverged_step"] = 65  # what came after the divergence is not good
    assert [s for s, _ in vf._good_checkpoints(ckpts, h)] == [60, 37]
    h.epochs[0]["val_loss"] = math.nan
    assert [s for s, _ in vf._good_checkpoints(ends, h)] == []


# -- the change table ------------------------------------------------------------------------
def _made(rule: str, **sections) -> list[str | None]:
    cfg = RunConfig().with_overrides(sections)
    out = []
    for change in CHANGES[rule]:
        made = change.make(cfg)
        if made is not None:
            cfg.with_overrides(made[0])  # every change is a valid config
        out.append(None if made is None else made[1])
    return out


def test_the_change_table():
    assert {"lr_too_high", "lr_too_low", "regularization_too_strong", "overfitting",
            "dead_relu", "saturation", "activations_exploding", "vanishing_gradients",
            "underfitting"} <= set(CHANGES)
    assert all(c.start in ("last_good", "last", "scratch") for cs in CHANGES.values() for c in cs)
    assert [c.start for c in CHANGES["lr_too_high"]] == ["last_good"]
    assert {c.start for r in ("saturation", "activations_exploding", "vanishing_gradients")
            for c in CHANGES[r]} == {"scratch"}
    assert _made("lr_too_high", optim={"lr": 0.3}) == ["lr 0.3 → 0.03"]
    assert _made("lr_too_low", optim={"lr": 1e-6}) == ["lr 1e-06 → 1e-05", "lr 1e-06 → 0.0001"]
    assert _made("lr_too_high", optim={"optimizer": "lbfgs"}) == [None]  # no lr to change
    assert _made("regularization_too_strong") == [None]
    assert _made("regularization_too_strong", regularization={"l2": 1.0, "l1": 0.5}) == [
        "l2 1 → 0.01, l1 0.5 → 0.005"]
    assert _made("overfitting", regularization={"l2": 1e-4}, model={"dropout": 0.5}) == [
        "l2 0.0001 → 0.001", None]
    assert _made("dead_relu", model={"activation": "tanh"}, optim={"lr": 0.01}) == [
        None, "lr 0.01 → 0.001"]
    sig = {"activation": "sigmoid"}
    assert _made("saturation", model={**sig, "init": "he"}) == ["init he → glorot (for sigmoid)"]
    assert _made("saturation", model={**sig, "init": "lecun"}) == [None]
    assert _made("vanishing_gradients", model={"activation": "relu", "init": "normal"}) == [
        "init normal → he (for relu)"]
    assert _made("activations_exploding", model={"activation": "relu", "init": "he"}) == [None]
    assert _made("underfitting", model={"hidden": [64, 32]}) == ["hidden 64,32 → 128,64"]
    assert _made("underfitting", model={"hidden": []}) == [None]


# -- verify.json read back -------------------------------------------------------------------
def _entry(**changes) -> dict:
    e = {"rule": "lr_too_high", "change": "lr 1 → 0.1", "start": "scratch", "start_step": 0,
         "steps": 10, "metric": "validation loss", "original": 2.0, "changed": 1.0,
         "improvement": 0.5, "helped": True, "original_diverged": False,
         "changed_diverged": False, "curves": {"original": [[0, 2.3], [10, 2.0]],
                                               "changed": [[0, 2.3], [10, 1.0]]}}
    e.update(changes)
    return e


def _doc(*entries, **changes) -> bytes:
    d = {"format": "neuronlab.verify", "version": 1, "steps": 10, "seed": 0,
         "verifications": list(entries)}
    d.update(changes)
    return json.dumps(d).encode()


HOSTILE = {
    "empty": b"",
    "not json": b"{verifications: yes}",
    "not utf-8": b"\xff\xfe{}",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "a list": b"[]",
    "another format": _doc(format="neuronlab.checkpoint"),
    "a later version": _doc(version=2),
    "verifications not a list": _doc(verifications={"a": 1}),
    "duplicate keys": b'{"format": "neuronlab.verify", "format": "x", "version": 1}',
    "entry not a dict": _doc("lr_too_high"),
    "missing field": _doc({k: v for k, v in _entry().items() if k != "helped"}),
    "unknown field": _doc(_entry(code="import os")),
    "helped a string": _doc(_entry(helped="yes")),
    "negative steps": _doc(_entry(steps=-1)),
    "steps a float": _doc(_entry(steps=1.5)),
    "infinite value": _doc(_entry()).replace(b'"original": 2.0', b'"original": Infinity'),
    "value a string": _doc(_entry(changed="1.0")),
    "long text": _doc(_entry(change="x" * 100_000)),
    "curves missing an arm": _doc(_entry(curves={"original": []})),
    "bad point": _doc(_entry(curves={"original": [[0, 1.0, 2.0]], "changed": []})),
    "bool step": _doc(_entry(curves={"original": [[True, 1.0]], "changed": []})),
    "too many points": _doc(_entry(curves={"original": [[0, 1.0]] * 20_000, "changed": []})),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_verify_json_is_one_clear_error(tmp_path, name):
    p = tmp_path / VERIFY_FILE
    p.write_bytes(HOSTILE[name])
    with pytest.raises(VerifyFileError, match=str(tmp_path)):
        load_verifications(tmp_path)


def test_verify_json_that_is_huge_a_fifo_or_a_folder_is_not_read(tmp_path):
    big = tmp_path / "big" / VERIFY_FILE
    big.parent.mkdir()
    with big.open("wb") as f:
        f.truncate(vf.MAX_VERIFY_BYTES + 1)  # sparse: nothing to read anyway
    with pytest.raises(VerifyFileError, match="at most"):
        load_verifications(big)
    fifo = tmp_path / "fifo" / VERIFY_FILE
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(VerifyFileError, match="FIFO"):
        load_verifications(fifo)
    (tmp_path / "dir" / VERIFY_FILE).mkdir(parents=True)
    with pytest.raises(VerifyFileError, match="directory"):
        load_verifications(tmp_path / "dir")
    with pytest.raises(FileNotFoundError):
        load_verifications(tmp_path)


def test_a_valid_file_reads_back_as_written(tmp_path):
    (tmp_path / VERIFY_FILE).write_bytes(_doc(_entry(), _entry(original=None, improvement=None,
                                                                original_diverged=True)))
    a, b = load_verifications(tmp_path)
    assert a.to_dict() == _entry() and b.original is None and b.original_diverged
    assert a.curves["changed"] == ((0, 2.3), (10, 1.0))


# -- the plot --------------------------------------------------------------------------------
def test_plot_verification_draws_one_panel_per_replay():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    vs = [_verdict(_arm([2.0, 1.5, 1.0]), _arm([2.0, 1.0, 0.5])),
          _verdict(_arm([5.0, 1e3, None], diverged=True), _arm([5.0, 4.0, 3.0])),
          _verdict(_arm([2.0, 1e-3, 1e-4]), _arm([2.0, 1.9, 1.8]))]
    fig = plot_verification(vs, ncols=2)
    visible = [ax for ax in fig.axes if ax.axison]
    assert len(visible) == 3 and len(fig.axes) == 4
    assert visible[0].get_title().startswith("lr_too_high: lr 1 → 0.1\nverified")
    assert visible[2].get_yscale() == "log"  # spans more than two decades
    assert all(len(ax.get_lines()) >= 2 for ax in visible)
    FigureCanvasAgg(fig).print_png(io.BytesIO())
    empty = plot_verification([])
    assert len(empty.axes) == 1 and empty.axes[0].texts
