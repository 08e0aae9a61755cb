"""Lightning's ModelCheckpoint, triggered by generator updates.

Under manual optimization ``trainer.global_step`` counts the optimizer steps of both networks,
so ModelCheckpoint's own ``every_n_train_steps`` does not count what the papers call iterations.
This subclass saves every ``every_n_g_steps`` generator updates; at the end of the run (the
end of the only epoch) the parent saves the final checkpoint and ``last.ckpt``.
"""

import torch
from pytorch_lightning.callbacks import ModelCheckpoint


class GeneratorStepCheckpoint(ModelCheckpoint):
    def __init__(self, every_n_g_steps: int, **kwargs):
        kwargs.setdefault("filename", "g_step={g_step:07d}")
        kwargs.setdefault("auto_insert_metric_name", False)
        kwargs.setdefault("save_last", True)
        super().__init__(every_n_epochs=1, **kwargs)
        self.every_n_g_steps = every_n_g_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (not self.every_n_g_steps or not pl_module.generator_stepped
                or pl_module.g_step % self.every_n_g_steps or self._should_skip_saving_checkpoint(trainer)):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def _monitor_candidates(self, trainer) -> dict:
        candidates = super()._monitor_candidates(trainer)
        candidates["g_step"] = torch.tensor(trainer.lightning_module.g_step)
        return candidates
