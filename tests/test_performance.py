"""Speed features: no host-device synchronization outside logging steps, and the acceleration options."""

import pytest
import pytorch_lightning as pl
import torch

from sngan_repro.train import run

# What moves a value from the device to the host, and so waits for the device's queued work.
_HOST_TRANSFERS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")


class _HostTransferCounter(pl.Callback):
    """Records the host transfers made inside the training steps that do not log (``GAN._logs_at``), but those of
    the optimizers' step counts: PyTorch keeps them on the host (unless ``capturable``), so reading one waits for
    nothing."""

    def __init__(self, monkeypatch):
        self.quiet_step, self.calls, self.optimizers = False, [], []
        for name in _HOST_TRANSFERS:
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
        self.g_step = module.g_step
        self.quiet_step = not module._logs_at(module.g_step + 1)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.quiet_step = False


@pytest.mark.parametrize("norm", ["sn", "san", "gp"])
def test_no_host_transfer_in_training_steps_that_do_not_log(tiny_cfg, monkeypatch, norm):
    counter = _HostTransferCounter(monkeypatch)
    counter.quiet_step, counter.g_step = True, -1
    torch.ones(()).item()  # the counter sees a transfer
    assert counter.calls == [(-1, "item")]
    counter.quiet_step, counter.calls = False, []
    module = run(tiny_cfg(f"norm={norm}", "optim.n_dis=2", "logger=none", steps=12), callbacks=[counter])
    assert module.g_step == 12
    assert counter.calls == []
