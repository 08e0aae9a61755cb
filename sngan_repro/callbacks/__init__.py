"""Lightning callbacks: checkpoints, sample grids, progress (metrics and diagnostics later)."""

from .checkpoint import GeneratorStepCheckpoint
from .progress import GeneratorStepProgressBar
from .samples import FixedLatentSamples

__all__ = ["GeneratorStepCheckpoint", "GeneratorStepProgressBar", "FixedLatentSamples"]
