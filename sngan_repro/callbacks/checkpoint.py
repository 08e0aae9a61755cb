"""Lightning's ModelCheckpoint, triggered by generator updates.

Under manual optimization ``trainer.global_step`` counts the optimizer steps of both networks,
so ModelCheckpoint's own ``every_n_train_steps`` does not count what the papers call iterations.
``GeneratorStepCheckpoint`` saves on the schedule of ``callbacks.schedule`` (every
``every_n_g_steps`` generator updates and after the last of the run's ``steps``; 0: the final checkpoint
only); ``BestCheckpoint`` keeps the best checkpoint by a logged metric, checked whenever it is measured.
"""

import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from ..errors import ConfigError
from ..run_directory import BEST_CHECKPOINT_TEMPLATE, CHECKPOINT_TEMPLATE
from .schedule import GeneratorStepCallback, is_due


class GeneratorStepCheckpoint(ModelCheckpoint):
    def __init__(self, every_n_g_steps: int, steps: int, **kwargs):
        kwargs.setdefault("filename", CHECKPOINT_TEMPLATE)
        kwargs.setdefault("auto_insert_metric_name", False)
        kwargs.setdefault("save_last", True)
        # a run's names are unique by generator step, and a resumed run must overwrite last.ckpt: Lightning would
        # write last-v1.ckpt beside it (leaving last.ckpt stale, which the next resume would continue from) when
        # last.ckpt was written by the preemption before this callback's first save, whose path it does not know
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(every_n_epochs=1, **kwargs)  # the epoch's end is the run's end: the final checkpoint
        self.every_n_g_steps, self.steps = every_n_g_steps, steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (not pl_module.generator_stepped or not is_due(pl_module.g_step, self.every_n_g_steps, self.steps)
                or self._should_skip_saving_checkpoint(trainer)):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def _monitor_candidates(self, trainer) -> dict:
        candidates = super()._monitor_candidates(trainer)
        candidates["g_step"] = torch.tensor(trainer.lightning_module.g_step)
        return candidates


class BestCheckpoint(GeneratorStepCheckpoint):
    """``best-g_step_<n>.ckpt``: the checkpoint with the best ``monitor`` value (``mode`` min or max), checked at
    the generator steps at which the callback logging ``monitor`` measures it. ``monitor=None``: inactive."""

    def __init__(self, monitor: str | None, steps: int, mode: str = "min", **kwargs):
        kwargs.setdefault("filename", BEST_CHECKPOINT_TEMPLATE)
        super().__init__(every_n_g_steps=0, steps=steps, monitor=monitor, mode=mode, save_top_k=1, save_last=False,
                         **kwargs)

    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if self.monitor is None:
            return
        periods = {name: every for callback in trainer.callbacks if isinstance(callback, GeneratorStepCallback)
                   for name, every in callback.logged_names().items() if every}
        if self.monitor not in periods:  # configured (validation checked it) but dropped, e.g. no Inception weights
            raise ConfigError(f"metrics.monitor={self.monitor!r} is not measured in this run (its metric could not "
                              f"be prepared, see above); set metrics.monitor=null or make the metric available.")
        self.every_n_g_steps = periods[self.monitor]

    def _should_skip_saving_checkpoint(self, trainer) -> bool:
        return self.monitor is None or super()._should_skip_saving_checkpoint(trainer)
