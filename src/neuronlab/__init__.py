"""neuronlab: a NumPy neural-network library and training workbench.

The top-level namespace is curated: the core (layers, losses, initialisers, regularisers,
optimizers, schedules, checks, preprocessing, the ``data`` module) and the training API
(``Trainer``, its callbacks, the ``Monitor``, diagnosis, model files, ensembles), listed in
``__all__`` below. Everything else is reached through its subpackage: ``nl.plots``,
``nl.report``, ``nl.tensorboard``, ``nl.search``, ``nl.sklearn``, ``nl.playground``,
``nl.config``, ``nl.runs``, ...

Every name and subpackage is imported on first use, so ``import neuronlab`` itself imports
nothing, not even NumPy (a few milliseconds): ``nl.Trainer`` loads the training API and the
core it needs, ``nl.plots`` matplotlib's plots, and neither loads the other.

A trained or loaded model predicts from raw features: ``model.predict(X)``,
``model.predict_proba(X)`` and ``model.decision_function(X)`` apply ``model.preprocessor``
and read the scores with the model's loss (:mod:`neuronlab.prediction`).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and readers see; at run time each name loads on first use
    from neuronlab import (  # noqa: F401  (the subpackages, as nl.layers, nl.io, ...)
        checks,
        data,
        errors,
        init,
        io,
        layers,
        losses,
        optim,
        prediction,
        preprocessing,
        regularizers,
        schedules,
        train,
    )
    from neuronlab.babysit.diagnose import Finding, diagnose, format_findings
    from neuronlab.babysit.lr_find import LRFindResult, lr_find
    from neuronlab.babysit.monitor import Monitor
    from neuronlab.checks.gradcheck import gradcheck
    from neuronlab.checks.report import GradcheckReport
    from neuronlab.ensemble import EMA, Ensemble, Polyak
    from neuronlab.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        ModelFileError,
        NeuronlabError,
    )
    from neuronlab.init import initialize
    from neuronlab.io import export_onnx, load, load_npz, save, save_npz
    from neuronlab.layers import (
        ACTIVATIONS,
        ELU,
        BatchNorm,
        Dropout,
        GaussianNoise,
        Layer,
        LayerNorm,
        LeakyReLU,
        Linear,
        Maxout,
        PReLU,
        ReLU,
        Sequential,
        Sigmoid,
        Tanh,
        mlp,
    )
    from neuronlab.losses import (
        BinaryHinge,
        Loss,
        MeanAbsoluteError,
        MeanSquaredError,
        MulticlassHinge,
        SigmoidCrossEntropy,
        SoftmaxCrossEntropy,
    )
    from neuronlab.optim import (
        LBFGS,
        SGD,
        Adagrad,
        Adam,
        AdamW,
        Momentum,
        Nesterov,
        Optimizer,
        RMSprop,
        get_optimizer,
    )
    from neuronlab.preprocessing import (
        PCA,
        ZCA,
        MeanCenter,
        MinMax,
        NotFittedError,
        Preprocessor,
        Standardize,
    )
    from neuronlab.regularizers import L1, L2, ElasticNet, MaxNorm, Regularizer
    from neuronlab.sanity import SanityReport, sanity_check
    from neuronlab.schedules import (
        Constant,
        Cosine,
        Exponential,
        InverseTime,
        Schedule,
        StepDecay,
        Warmup,
        get_schedule,
        schedule_from_config,
    )
    from neuronlab.train import (
        Callback,
        Checkpoint,
        DivergenceError,
        EarlyStopping,
        History,
        JSONLLogger,
        NonFiniteGuard,
        ProgressBar,
        ReduceLROnPlateau,
        Trainer,
        TrainState,
        load_checkpoint,
    )

__version__ = "0.1.0"

__all__ = [
    # data sets, splits, minibatches: nl.data.digits(), ...
    "data",
    # layers
    "ACTIVATIONS", "BatchNorm", "Dropout", "ELU", "GaussianNoise", "Layer", "LayerNorm",
    "LeakyReLU", "Linear", "Maxout", "PReLU", "ReLU", "Sequential", "Sigmoid", "Tanh", "mlp",
    # losses
    "BinaryHinge", "Loss", "MeanAbsoluteError", "MeanSquaredError", "MulticlassHinge",
    "SigmoidCrossEntropy", "SoftmaxCrossEntropy",
    # initialisers, regularisers and the max-norm constraint
    "initialize", "ElasticNet", "L1", "L2", "MaxNorm", "Regularizer",
    # optimizers
    "Adagrad", "Adam", "AdamW", "LBFGS", "Momentum", "Nesterov", "Optimizer", "RMSprop", "SGD",
    "get_optimizer",
    # schedules
    "Constant", "Cosine", "Exponential", "InverseTime", "Schedule", "StepDecay", "Warmup",
    "get_schedule", "schedule_from_config",
    # preprocessing
    "MeanCenter", "MinMax", "NotFittedError", "PCA", "Preprocessor", "Standardize", "ZCA",
    # training and its callbacks
    "Callback", "Checkpoint", "EarlyStopping", "History", "JSONLLogger", "Monitor",
    "NonFiniteGuard", "ProgressBar", "ReduceLROnPlateau", "TrainState", "Trainer",
    "load_checkpoint",
    # checks and diagnosis
    "Finding", "GradcheckReport", "LRFindResult", "SanityReport", "diagnose", "format_findings",
    "gradcheck", "lr_find", "sanity_check",
    # model files and export
    "export_onnx", "load", "load_npz", "save", "save_npz",
    # ensembles and parameter averaging
    "EMA", "Ensemble", "Polyak",
    # errors (neuronlab.errors; DivergenceError ends a diverging fit)
    "CheckpointError", "ConfigError", "DataError", "DivergenceError", "ModelFileError",
    "NeuronlabError",
]  # fmt: skip

#: Where each name of ``__all__`` lives. ``import neuronlab`` imports none of them (not even
#: NumPy): a name's module is imported on first use (``nl.Trainer``, ``from neuronlab import
#: Trainer``), and the name then stays in this namespace. The ``if TYPE_CHECKING:`` imports above
#: say the same to type checkers; tests/test_public_api.py and tests/test_startup.py hold the two
#: in step.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        ["ACTIVATIONS", "BatchNorm", "Dropout", "ELU", "GaussianNoise", "Layer", "LayerNorm",
         "LeakyReLU", "Linear", "Maxout", "PReLU", "ReLU", "Sequential", "Sigmoid", "Tanh", "mlp"],
        "layers",
    ),
    **dict.fromkeys(
        ["BinaryHinge", "Loss", "MeanAbsoluteError", "MeanSquaredError", "MulticlassHinge",
         "SigmoidCrossEntropy", "SoftmaxCrossEntropy"],
        "losses",
    ),
    "initialize": "init",
    **dict.fromkeys(["ElasticNet", "L1", "L2", "MaxNorm", "Regularizer"], "regularizers"),
    **dict.fromkeys(
        ["Adagrad", "Adam", "AdamW", "LBFGS", "Momentum", "Nesterov", "Optimizer", "RMSprop",
         "SGD", "get_optimizer"],
        "optim",
    ),
    **dict.fromkeys(
        ["Constant", "Cosine", "Exponential", "InverseTime", "Schedule", "StepDecay", "Warmup",
         "get_schedule", "schedule_from_config"],
        "schedules",
    ),
    **dict.fromkeys(
        ["MeanCenter", "MinMax", "NotFittedError", "PCA", "Preprocessor", "Standardize", "ZCA"],
        "preprocessing",
    ),
    **dict.fromkeys(
        ["Callback", "Checkpoint", "DivergenceError", "EarlyStopping", "History", "JSONLLogger",
         "NonFiniteGuard", "ProgressBar", "ReduceLROnPlateau", "TrainState", "Trainer",
         "load_checkpoint"],
        "train",
    ),
    "Monitor": "babysit.monitor",
    **dict.fromkeys(["Finding", "diagnose", "format_findings"], "babysit.diagnose"),
    **dict.fromkeys(["LRFindResult", "lr_find"], "babysit.lr_find"),
    **dict.fromkeys(["GradcheckReport", "gradcheck"], "checks"),
    **dict.fromkeys(["SanityReport", "sanity_check"], "sanity"),
    **dict.fromkeys(["export_onnx", "load", "load_npz", "save", "save_npz"], "io"),
    **dict.fromkeys(["EMA", "Ensemble", "Polyak"], "ensemble"),
    **dict.fromkeys(
        ["CheckpointError", "ConfigError", "DataError", "ModelFileError", "NeuronlabError"],
        "errors",
    ),
}  # fmt: skip

#: The subpackages and modules the top level names (``nl.data``, ``nl.layers``, ``nl.io``, ...;
#: ``nl.plots``, ``nl.report``, ``nl.search``, ... pull matplotlib, Optuna, click or Starlette).
#: Each is imported on first attribute access, like any other submodule (``nl.babysit``).
_LAZY_MODULES = frozenset(
    {"checks", "cli", "config", "data", "errors", "graph", "init", "io", "layers", "losses",
     "optim", "playground", "plots", "prediction", "preprocessing", "regularizers", "report",
     "run_folder", "runs", "schedules", "search", "sklearn", "tensorboard", "train"}
)  # fmt: skip

#: Names the top level exported before it was curated, and the module that has them now.
_MOVED = {
    **dict.fromkeys(
        ["RunRecords", "as_records", "plot_accuracy", "plot_activation_histograms",
         "plot_dead_units", "plot_decision_regions", "plot_gradient_histograms",
         "plot_gradient_norms", "plot_learning_rate", "plot_loss", "plot_update_ratios",
         "plot_weight_grid", "weight_mosaic"],
        "plots",
    ),
    **dict.fromkeys(["SECTION_IDS", "image_shape_for", "write_report"], "report"),
    "read_metrics": "train.loggers",
    "TensorBoardLogger": "tensorboard",
    "GRADCHECK_BANDS": "checks",
    "GradcheckRow": "checks",
    "relative_error": "checks",
    "fans": "init",
    "atomic_write_bytes": "io",
    "Summary": "layers",
    "SanityResult": "sanity",
    "recompute_batchnorm": "ensemble",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where is not None:
        value = getattr(importlib.import_module(f"{__name__}.{where}"), name)
        globals()[name] = value  # the next access is a plain attribute
        return value
    if name in _LAZY_MODULES or (
        not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None
    ):
        return importlib.import_module(f"{__name__}.{name}")
    if name in _MOVED:
        raise AttributeError(
            f"module 'neuronlab' has no attribute {name!r}; use neuronlab.{_MOVED[name]}.{name}"
        )
    raise AttributeError(f"module 'neuronlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | _LAZY_MODULES)
