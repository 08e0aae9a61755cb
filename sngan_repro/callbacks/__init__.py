"""Lightning callbacks, built from the ``callbacks`` config group (``conf/callbacks``): checkpoints, sample
grids, metrics, spectral diagnostics, the HParams summary and the progress bar. Periodic ones share the
schedule of ``schedule.GeneratorStepCallback``."""

from .checkpoint import BestCheckpoint, GeneratorStepCheckpoint
from .diagnostics import SpectralDiagnostics
from .hparams import HParamsSummary
from .metrics import MetricsCallback
from .progress import GeneratorStepProgressBar
from .samples import FixedLatentSamples
from .schedule import GeneratorStepCallback, is_due

__all__ = [
    "BestCheckpoint",
    "FixedLatentSamples",
    "GeneratorStepCallback",
    "GeneratorStepCheckpoint",
    "GeneratorStepProgressBar",
    "HParamsSummary",
    "MetricsCallback",
    "SpectralDiagnostics",
    "is_due",
]
