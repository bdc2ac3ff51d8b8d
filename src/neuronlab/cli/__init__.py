"""The ``neuronlab`` command line: one click group, one module per family of commands.

Every command is registered on :data:`cli` by name, with the first paragraph of its help
(what ``neuronlab --help`` lists), and its module is imported when the command runs or shows
its own help: ``neuronlab --help`` imports click and this package's ``app`` only, not NumPy
nor the core (``neuronlab train --help`` imports what ``train``'s options list: the
registries). tests/test_startup.py holds each line equal to its command's own help.
"""

from neuronlab.cli.app import EXIT_CHECK_FAILED, EXIT_DIVERGED, EXIT_USAGE, cli, main

#: name -> (``"module:attribute"``, the first paragraph of its help)
_COMMANDS = {
    "check": ("neuronlab.cli.train:check", (
        "Sanity checks of a run config before training it: initial loss, regularisation, "
        "overfit a tiny subset, gradient check; then the data: the baselines to beat, "
        "held-out rows that repeat training rows, identical inputs with different labels. "
        "Takes the options of `train`; exits 1 if a check fails (warnings do not)."
    )),
    "diagnose": ("neuronlab.cli.diagnose:diagnose",
        "Diagnose a run from its folder; --verify checks each finding by replaying its fix."),
    "ensemble": ("neuronlab.cli.search:ensemble", (
        "Average the predicted probabilities of the best trials of a search (or of runs) "
        "and report each member's and the ensemble's accuracy on the held-out test split."
    )),
    "evaluate": ("neuronlab.cli.models:evaluate",
        "Accuracy and loss of MODEL (a model file or a run directory)."),
    "export": ("neuronlab.cli.models:export",
        "Write MODEL as ONNX (inference graph) or .npz (arrays, readable without pickle)."),
    "lr-find": ("neuronlab.cli.lr_find:lr_find_command",
        "Find a learning rate: a range test (Smith) of the run `train` would make."),
    "playground": ("neuronlab.playground.command:playground",
        "Train a network on 2-D data in the browser and watch it learn (a local web page)."),
    "report": ("neuronlab.cli.train:report", (
        "Write one self-contained HTML report of RUN_DIR: config, model, metrics, diagnosis, "
        "plots."
    )),
    "search": ("neuronlab.cli.search:search", (
        "Search hyperparameters: every trial trains a run config, scored on the validation "
        "split."
    )),
    "summary": ("neuronlab.cli.models:summary",
        "The per-layer table of MODEL: neurons, weights, biases, parameters."),
    "train": ("neuronlab.cli.train:train", (
        "Train an MLP and write runs/<name>/ (config.toml, metrics.jsonl, model.safetensors, "
        "checkpoints/). With no options: 64-256-10 ReLU on digits, He init, Adam, "
        "standardized."
    )),
}  # fmt: skip

for _name, (_target, _help) in _COMMANDS.items():
    cli.add_lazy_command(_name, _target, _help)
del _name, _target, _help

__all__ = ["EXIT_CHECK_FAILED", "EXIT_DIVERGED", "EXIT_USAGE", "cli", "main"]
