"""The callbacks a run's config asks for, built before training so that a missing extractor is
reported (or, with metrics.required=false, worked around) before any heavy work."""

import sys

from ..errors import MetricsUnavailableError
from .metrics import SampleQualityMetrics


def build_extractor(metrics_cfg, cache_dir, device="cpu"):
    if metrics_cfg.extractor == "inception":
        from ..metrics.inception import load_inception

        return load_inception(metrics_cfg.inception_weights, device)
    if metrics_cfg.extractor == "digits_classifier":
        from ..metrics.digits_classifier import load_digits_classifier

        return load_digits_classifier(cache_dir, device)
    raise MetricsUnavailableError(f"metrics.extractor={metrics_cfg.extractor!r} is not one of inception, "
                                  f"digits_classifier.")


def dataset_description(cfg) -> dict:
    """What identifies the real images of a run, for the real-statistics cache key."""
    return {key: value for key, value in cfg.dataset.items() if key not in ("num_workers", "download")}


def sample_quality_callbacks(cfg, extractor=None) -> list:
    """IS/FID callbacks of ``cfg.metrics``; [] (with one warning line) when the extractor cannot be
    loaded and metrics.required is false, MetricsUnavailableError when it is true."""
    metrics = cfg.metrics
    wanted = metrics.extractor and metrics.every and (metrics.inception_score or metrics.fid)
    if not wanted:
        return []
    try:
        extractor = extractor or build_extractor(metrics, cfg.paths.cache_dir)
    except MetricsUnavailableError as error:
        if metrics.required:
            raise
        print(f"warning: {error} Training goes on without IS/FID (metrics.required=false).", file=sys.stderr)
        return []
    prefix = "digits_" if metrics.extractor == "digits_classifier" else ""
    return [SampleQualityMetrics(
        extractor, metrics.every, cfg.paths.cache_dir, dataset_description(cfg),
        is_samples=metrics.inception_score.samples if metrics.inception_score else 0,
        is_splits=metrics.inception_score.splits if metrics.inception_score else 1,
        fid_samples=metrics.fid.samples if metrics.fid else 0, fid_real=metrics.fid.real if metrics.fid else 0,
        batch_size=metrics.batch_size, prefix=prefix,
    )]
