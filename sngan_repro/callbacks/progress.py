"""Lightning's tqdm progress bar, counting generator updates against train.steps."""

from pytorch_lightning.callbacks import TQDMProgressBar

_SHOWN = ("loss/d", "loss/g", "d_out/real", "d_out/fake")


class GeneratorStepProgressBar(TQDMProgressBar):
    """Shows G steps done / train.steps, their rate, and the last logged losses and D outputs."""

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.reset(total=pl_module.cfg.train.steps)
        bar.initial = bar.n = pl_module.g_step
        bar.set_description("G steps")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.generator_stepped or not self._should_update(pl_module.g_step, self.train_progress_bar.total):
            return
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        self.train_progress_bar.update(pl_module.g_step - self.train_progress_bar.n)

    def get_metrics(self, trainer, pl_module) -> dict:
        return {name.replace("/", "_"): f"{pl_module.last_metrics[name]:.3g}"
                for name in _SHOWN if name in pl_module.last_metrics}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
        if self._leave:
            self.train_progress_bar.close()
