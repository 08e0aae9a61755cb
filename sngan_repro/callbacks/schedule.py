"""Acting every N generator updates, with one rule for every periodic callback.

Under manual optimization Lightning's ``global_step`` counts the optimizer steps of both networks, so
callbacks count what the papers call iterations: generator updates (``GAN.g_step``). The rule, for a
period ``every`` > 0: act before the first update of a fresh run (step 0, the untrained baseline), after
every ``every``-th generator update, and after the run's last generator update (``steps``, the run's length,
``train.steps``) whether or not ``every`` divides it, so the final generator is always measured and drawn.
``every`` = 0: never.
"""

from pytorch_lightning.callbacks import Callback


def is_due(g_step: int, every: int, steps: int) -> bool:
    """Whether a callback with period ``every`` acts at generator step ``g_step`` of a run of ``steps`` (see the
    module's doc)."""
    return bool(every) and (g_step % every == 0 or g_step >= steps)


class GeneratorStepCallback(Callback):
    """Calls ``act(trainer, pl_module)`` when ``is_due`` with ``every_n_g_steps`` in a run of ``steps`` generator
    updates; subclasses with several periods (one per metric) override ``on_generator_step``. ``log_scalars`` writes
    values at ``step=g_step``."""

    def __init__(self, steps: int, every_n_g_steps: int = 0):
        self.steps, self.every_n_g_steps = steps, every_n_g_steps

    def is_due(self, pl_module, every: int) -> bool:
        return is_due(pl_module.g_step, every, self.steps)

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.g_step == 0:  # a fresh run; a resumed one was measured before it stopped
            self.on_generator_step(trainer, pl_module, in_training_step=False)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_stepped:
            self.on_generator_step(trainer, pl_module, in_training_step=True)

    def on_generator_step(self, trainer, pl_module, in_training_step: bool) -> None:
        if self.is_due(pl_module, self.every_n_g_steps):
            self.act(trainer, pl_module)

    def act(self, trainer, pl_module) -> None:
        raise NotImplementedError

    def logged_names(self) -> dict[str, int]:
        """{scalar name: period} of what this callback logs, for the HParams tab and checkpoint monitoring."""
        return {}

    def measured_protocols(self) -> dict[str, str]:
        """{scalar name: how it is measured} of the quality measures this callback logs during training (run.json
        records them; reports read a run's final values by these names)."""
        return {}

    @staticmethod
    def log_scalars(trainer, pl_module, values: dict[str, float], monitorable: bool) -> None:
        """Write ``values`` to every logger at ``step=g_step`` and, when ``monitorable`` (only allowed inside a
        training step's hooks), into ``trainer.callback_metrics`` for ``ModelCheckpoint(monitor=...)``."""
        for logger in trainer.loggers:
            logger.log_metrics(values, step=pl_module.g_step)
        if monitorable:
            for name, value in values.items():  # logger=False: the loggers got it at g_step, not global_step
                pl_module.log(name, value, logger=False, on_step=True, on_epoch=False)
