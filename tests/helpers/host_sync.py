"""Counting host-device synchronizations inside training steps: tests/test_performance.py on the CPU, and
scripts/gpu_check.py on a GPU, where each one stalls the device's queue."""

import pytorch_lightning as pl
import torch

# What moves a value from the device to the host, and so waits for the device's queued work.
HOST_TRANSFERS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


class HostTransferCounter(pl.Callback):
    """Records the host transfers made inside the training steps that do not log (a generator update logs when its
    number is a multiple of train.log_every, and the last one), but those of the optimizers' step counts: PyTorch
    keeps them on the host (unless ``capturable``), so reading one waits for nothing."""

    def __init__(self, monkeypatch):
        self.quiet_step, self.calls, self.optimizers, self.quiet_batches = False, [], [], 0
        for name in HOST_TRANSFERS:
            monkeypatch.setattr(torch.Tensor, name, self._counted(name, getattr(torch.Tensor, name)))
        monkeypatch.setattr(torch.cuda, "synchronize", self._counted("torch.cuda.synchronize", torch.cuda.synchronize))

    def _is_step_count(self, value) -> bool:
        return any(state.get("step") is value for optimizer in self.optimizers for state in optimizer.state.values())

    def _counted(self, name, original):
        def counted(*args, **kwargs):
            if self.quiet_step and not (args and self._is_step_count(args[0])):
                self.calls.append((self.g_step, name))
            return original(*args, **kwargs)
        return counted

    def on_train_start(self, trainer, module) -> None:
        self.optimizers = trainer.optimizers

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.g_step, train = module.g_step, module.cfg.train
        self.quiet_step = (self.g_step + 1) % train.log_every != 0 and self.g_step + 1 != train.steps
        self.quiet_batches += self.quiet_step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.quiet_step = False
