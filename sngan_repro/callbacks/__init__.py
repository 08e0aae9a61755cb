"""Lightning callbacks, built from the ``callbacks`` config group (``conf/callbacks``): checkpoints, sample
grids, metrics, spectral diagnostics, the HParams summary, the progress bar and the run record (``run.json``).
Periodic ones share the schedule of ``schedule.GeneratorStepCallback``."""

from .checkpoint import BestCheckpoint, GeneratorStepCheckpoint
from .diagnostics import SpectralDiagnostics
from .hparams import HParamsSummary
from .metrics import MetricsCallback
from .preemption import Preemption
from .progress import GeneratorStepProgressBar
from .run_record import RunRecord
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
    "Preemption",
    "RunRecord",
    "SpectralDiagnostics",
    "is_due",
]
