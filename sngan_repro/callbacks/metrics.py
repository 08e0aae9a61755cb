"""The metrics of ``metrics.measures`` during training: each measured on the schedule of
``callbacks.schedule`` with its own period, logged to every logger at ``step=g_step`` and into
``trainer.callback_metrics`` (for ``BestCheckpoint``), with its pictures in every tracker that takes images.

A metric whose resource cannot be had (e.g. Inception weights offline) stops the run before training
with ``required=true``; with ``required=false`` it is dropped with one warning line and training goes on.
"""

import sys

from .. import trackers
from ..errors import MetricsUnavailableError
from ..metrics import Metric, MetricSetup, measured_in_training
from ..metrics.base import instantiate_measures
from .schedule import GeneratorStepCallback


def last_quality_values(trainer, with_std: bool = True) -> dict[str, float]:
    """The last logged value of every quality metric of ``trainer``'s metrics callbacks, by its protocol's name
    (e.g. digits_fid/2k_vs_train1797); ``with_std=False`` leaves the spreads over splits out."""
    # kept as the floats the metrics computed: the copies Lightning keeps in callback_metrics are tensors on the
    # device, and reading one (the progress bar does at every step) would wait for the device's queued work
    return {name: value for callback in trainer.callbacks if isinstance(callback, MetricsCallback)
            for name, value in callback.last_values.items() if with_std or not name.endswith("_std")}


class MetricsCallback(GeneratorStepCallback):
    """Measures the metrics built from ``measures`` (the nodes of ``metrics.measures``) each on its own period in a
    run of ``steps`` generator updates, on the images of ``dataset`` (the run's dataset config, which names them in
    on-disk caches of real-image statistics). A metric with ``every: 0`` is for the evaluation command only: it is
    neither prepared nor measured here (e.g. ``metrics=full``'s VGG-16 precision/recall)."""

    def __init__(self, measures, steps: int, dataset, required: bool = False):
        super().__init__(steps)
        self.metrics = {key: metric for key, metric in instantiate_measures(measures).items() if metric.every}
        self.dataset, self.required = dict(dataset), required
        self.last_values: dict[str, float] = {}  # of this run's last measurement of each metric

    def logged_names(self) -> dict[str, int]:
        return {name: metric.every for metric in self.metrics.values() for name in metric.names()}

    def measured_protocols(self) -> dict[str, str]:
        # after setup the names are final (e.g. FID's real-image count once the dataset is known)
        return measured_in_training(self.metrics)

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        # the strategy's device: the module is moved there only after the setup hooks
        setup = MetricSetup(trainer.datamodule, trainer.strategy.root_device, self.dataset, trainer.global_rank,
                            trainer.world_size)
        # rank zero prepares first (and fills on-disk caches such as real statistics); the others then read them
        if trainer.is_global_zero:
            self._prepare(setup)
        trainer.strategy.barrier()
        if not trainer.is_global_zero:
            self._prepare(setup)

    def _prepare(self, setup: MetricSetup) -> None:
        for key, metric in list(self.metrics.items()):
            try:
                metric.prepare(setup)
            except MetricsUnavailableError as error:
                if self.required:
                    raise
                print(f"warning: {error} Training goes on without metrics.measures.{key} (metrics.required=false).",
                      file=sys.stderr)
                del self.metrics[key]

    def on_generator_step(self, trainer, pl_module, in_training_step: bool) -> None:
        for metric in self.metrics.values():
            if self.is_due(pl_module, metric.every):
                self.measure(trainer, pl_module, metric, monitorable=in_training_step)

    def measure(self, trainer, pl_module, metric: Metric, monitorable: bool) -> None:
        values = metric.compute(pl_module)
        self.last_values |= values
        self.log_scalars(trainer, pl_module, values, monitorable)
        if trainer.is_global_zero:
            for tag, image in metric.images().items():
                trackers.log_image(trainer.loggers, tag, image, pl_module.g_step)
