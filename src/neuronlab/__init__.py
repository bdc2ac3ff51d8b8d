"""neuronlab: a NumPy neural-network library and training workbench."""

from neuronlab import checks, data, init, io, layers, losses, optim, preprocessing, regularizers, schedules, train
from neuronlab.checks import *  # noqa: F403  (every module lists its public names in __all__)
from neuronlab.init import *  # noqa: F403
from neuronlab.io import *  # noqa: F403
from neuronlab.layers import *  # noqa: F403
from neuronlab.losses import *  # noqa: F403
from neuronlab.optim import *  # noqa: F403
from neuronlab.preprocessing import *  # noqa: F403
from neuronlab.regularizers import *  # noqa: F403
from neuronlab.schedules import *  # noqa: F403
from neuronlab.train import *  # noqa: F403
from neuronlab import monitor  # after train: it builds on train.callbacks
from neuronlab.monitor import *  # noqa: F403
from neuronlab import diagnose as _diagnose_module  # the name nl.diagnose is the function
from neuronlab.diagnose import *  # noqa: F403
from neuronlab import sanity
from neuronlab.sanity import *  # noqa: F403
from neuronlab import plots, report, tensorboard  # matplotlib / tensorboardX load lazily inside
from neuronlab.plots import *  # noqa: F403
from neuronlab.report import *  # noqa: F403
from neuronlab.tensorboard import *  # noqa: F403
from neuronlab import ensemble  # Ensemble, EMA/Polyak averaging (search loads Optuna lazily)
from neuronlab.ensemble import *  # noqa: F403

__version__ = "0.1.0"

__all__ = [
    "data",
    *checks.__all__,
    *init.__all__,
    *io.__all__,
    *layers.__all__,
    *losses.__all__,
    *optim.__all__,
    *preprocessing.__all__,
    *regularizers.__all__,
    *schedules.__all__,
    *train.__all__,
    *monitor.__all__,
    *_diagnose_module.__all__,
    *sanity.__all__,
    *plots.__all__,
    *report.__all__,
    *tensorboard.__all__,
    *ensemble.__all__,
]
