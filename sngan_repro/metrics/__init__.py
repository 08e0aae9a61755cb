"""Quality metrics (objects the ``metrics`` presets instantiate): IS/FID in the features of Inception-v3 or of
the digits classifier, and Xiang & Li's reconstruction loss. ``base.Metric`` is what a new metric implements."""

from .base import Metric, MetricSetup, instantiate_metrics, measured_in_training
from .reconstruction import Reconstruction
from .sample_quality import SampleQuality

__all__ = ["Metric", "MetricSetup", "Reconstruction", "SampleQuality", "instantiate_metrics", "measured_in_training"]
