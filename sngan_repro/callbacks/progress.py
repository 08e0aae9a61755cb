"""Lightning's tqdm progress bar, one bar for the whole run counting generator updates against train.steps."""

import sys

from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

from .metrics import last_quality_values

_SHOWN = ("loss/d", "loss/g", "d_out/real", "d_out/fake")


class GeneratorStepProgressBar(TQDMProgressBar):
    """Shows G steps done / ``steps`` (the run's length), their rate, the last logged losses and D outputs and the
    latest value of each quality metric. Lightning's bar is per epoch ("Training", then "Epoch N" each epoch); this
    one is made once, with its total, when training starts, and never reset: one bar is drawn."""

    def __init__(self, steps: int, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps

    def on_train_start(self, trainer, pl_module) -> None:
        self.train_progress_bar = Tqdm(desc="G steps", total=self.steps, initial=pl_module.g_step,
                                       position=2 * self.process_position, disable=self.is_disabled, leave=True,
                                       dynamic_ncols=True, file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        """The bar spans epochs (Lightning's would be reset here)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.generator_stepped or not self._should_update(pl_module.g_step, self.train_progress_bar.total):
            return
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        self.train_progress_bar.update(pl_module.g_step - self.train_progress_bar.n)

    def get_metrics(self, trainer, pl_module) -> dict:
        shown = {name.replace("/", "_"): pl_module.last_metrics[name] for name in _SHOWN
                 if name in pl_module.last_metrics}
        # a quality metric by its measure and kind (digits_fid/2k_vs_train1797 -> digits_fid)
        shown |= {name.split("/")[0]: value for name, value in last_quality_values(trainer, with_std=False).items()}
        return {name: f"{value:.3g}" for name, value in shown.items()}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
