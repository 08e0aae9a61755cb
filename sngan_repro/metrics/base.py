"""What a quality metric is, for training and evaluation alike.

A metric owns the names it logs (which state its protocol), one sentence per name saying how it
was measured, what it must prepare from the data (real statistics, held-out images) and how it
computes from a generator. The ``metrics`` presets list metric objects by ``_target_`` under
``metrics.measures``; the training callback (``callbacks.metrics``) and ``python -m
sngan_repro.evaluate`` both only iterate them, so a new metric is one class plus presets.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError
from ..instantiate import instantiate_checked


@dataclass(frozen=True)
class MetricSetup:
    """What a metric may prepare from: the run's data, its device and, under DDP, this process's rank."""

    datamodule: Any  # an ImageDataModule
    device: torch.device
    dataset: dict  # the run's dataset config: identifies the real images in on-disk caches
    rank: int = 0
    world_size: int = 1


class Metric(ABC):
    """A measure of a generator. ``every``: generator updates between measurements during training (0: only
    in evaluation); ``heldout_images``: held-out images it needs (checked against dataset.heldout before any
    work). Under DDP, every rank calls ``prepare`` and ``compute`` and gets the same numbers."""

    heldout_images = 0

    def __init__(self, every: int = 0):
        require_count(every, "every", minimum=0)
        self.every = every

    @abstractmethod
    def names(self) -> list[str]:
        """The scalars it logs; each name states the protocol (e.g. fid/5k_vs_train10k)."""

    @abstractmethod
    def protocols(self) -> dict[str, str]:
        """A sentence per logged name saying how it was measured."""

    def prepare(self, setup: MetricSetup) -> None:  # noqa: B027 (optional: a metric may need nothing)
        """Whatever must be ready before the first ``compute`` (real statistics, held-out images, networks).
        Raises MetricsUnavailableError when a resource cannot be had (e.g. missing Inception weights)."""

    @abstractmethod
    def compute(self, gan) -> dict[str, float]:
        """{name: value} for the generator of ``gan`` (a ``sngan_repro.module.GAN``) now."""

    def generated_images_needed(self) -> int | None:
        """How many images it scores when ``compute`` is given images instead of a generator (an ``ImageSet``);
        None: it needs the generator itself."""
        return None

    def images(self) -> dict[str, torch.Tensor]:
        """{tag: (3, H, W) image in [0, 1]} of the last ``compute`` for the trackers (e.g. reconstructions)."""
        return {}


class MetricSettingError(ConfigError):
    """A metric's setting is invalid; the message starts with the setting's key inside the metric."""


def require_count(value, name: str, minimum: int = 1) -> None:
    """Refuse a metric setting that is not an integer >= ``minimum``, naming it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        accepted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise MetricSettingError(f"{name}={value} must be {accepted}.")


def instantiate_metrics(metrics_cfg) -> dict[str, Metric]:
    """The metric objects of a ``metrics`` preset (``instantiate_measures`` of its ``measures``)."""
    return instantiate_measures(metrics_cfg.get("measures"))


def instantiate_measures(measures) -> dict[str, Metric]:
    """{key: Metric} from the nodes of ``metrics.measures``; a bad setting is reported with its full key
    (``metrics.measures.<key>.<setting>=...``)."""
    built = {}
    for key, node in (measures or {}).items():
        if node is None:  # metrics.measures.<key>=null switches a preset's metric off
            continue
        if not hasattr(node, "get") or not node.get("_target_"):
            raise ConfigError(f"metrics.measures.{key} has no _target_; give the class of a sngan_repro Metric.")
        try:
            metric = instantiate_checked(node)
        except MetricSettingError as error:
            raise ConfigError(f"metrics.measures.{key}.{error}") from None
        if not isinstance(metric, Metric):
            raise ConfigError(f"metrics.measures.{key}._target_={node._target_!r} is not a sngan_repro Metric.")
        built[key] = metric
    return built


def measured_in_training(metrics: dict[str, Metric]) -> dict[str, str]:
    """{logged name: protocol sentence} of the metrics measured during training (``every`` > 0)."""
    return {name: metric.protocols().get(name, "") for metric in metrics.values() if metric.every
            for name in metric.names()}


def check_heldout(metrics: dict[str, Metric], heldout: int, remedy: str) -> None:
    """Refuse a metric that needs more held-out images than the run set aside (``dataset.heldout``)."""
    for key, metric in metrics.items():
        if metric.heldout_images > heldout:
            raise ConfigError(f"metrics.measures.{key} needs {metric.heldout_images} held-out images but "
                              f"dataset.heldout={heldout}; {remedy}.")


def check_metrics(cfg) -> dict[str, Metric]:
    """Build the metrics of a composed run config and check them against its dataset and ``metrics.monitor``,
    before any heavy work (nothing is loaded or computed); return them."""
    metrics = instantiate_metrics(cfg.metrics)
    check_heldout(metrics, cfg.dataset.get("heldout", 0), "set dataset.heldout to at least that (Xiang & Li hold "
                                                          "out 2,000)")
    monitor, mode = cfg.metrics.get("monitor"), cfg.metrics.get("monitor_mode")
    if mode not in ("min", "max"):
        raise ConfigError(f"metrics.monitor_mode={mode!r} is not min or max.")
    logged = sorted(name for metric in metrics.values() if metric.every for name in metric.names())
    if monitor and monitor not in logged:
        raise ConfigError(f"metrics.monitor={monitor!r} is not logged during this run; "
                          f"accepted: {', '.join(logged) or 'none (no metric is measured during training)'}.")
    return metrics


def metric_cache_folders(cfg: DictConfig) -> dict[str, str]:
    """The folders the metrics of ``cfg.metrics`` keep caches in (real-image statistics, the digits classifier), by
    the config field that sets them: ``paths.cache_dir``, unless a measure sets its own."""
    folders = {}

    def visit(node, key: str) -> None:
        if isinstance(node, DictConfig):
            for name, child in node.items():
                visit(child, f"{key}.{name}")
        elif key.endswith(".cache_dir") and node is not None:
            folders["paths.cache_dir" if node == cfg.paths.cache_dir else key] = node

    visit(cfg.metrics.get("measures") or OmegaConf.create(), "metrics.measures")
    return folders
