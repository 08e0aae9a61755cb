"""Speed features: no host-device synchronization outside logging steps, and the acceleration options."""

import ctypes
from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import tiny_run_overrides
from helpers.host_sync import HostTransferCounter
from helpers.invariants import LOSS_TOLERANCES, assert_same_losses
from PIL import Image
from torch import nn

from sngan_repro import compose
from sngan_repro.data import DigitsDataModule, ImageFolderDataModule
from sngan_repro.errors import ConfigError
from sngan_repro.losses import NonSaturatingLoss
from sngan_repro.nn import spectral_norm
from sngan_repro.nn.spectra import san_constant
from sngan_repro.precision import PerNetworkLossScaling
from sngan_repro.train import run


@pytest.mark.parametrize("norm", ["sn", "san", "gp"])
def test_no_host_transfer_in_training_steps_that_do_not_log(tiny_cfg, monkeypatch, norm):
    counter = HostTransferCounter(monkeypatch)
    counter.quiet_step, counter.g_step = True, -1
    torch.ones(()).item()  # the counter sees a transfer
    assert counter.calls == [(-1, "item")]
    counter.quiet_step, counter.calls = False, []
    module = run(tiny_cfg(f"norm={norm}", "optim.n_dis=2", "logger=none", steps=12), callbacks=[counter])
    assert module.g_step == 12 and module.cfg.train.log_every == 5  # updates 5, 10 and 12 log, the 9 others do not
    assert counter.quiet_batches >= 9 and counter.calls == []


def test_no_host_transfer_between_logging_steps_once_a_metric_was_measured(tiny_cfg, monkeypatch):
    """The progress bar shows the last measured metric at every step: from the floats the metric computed, not
    from Lightning's copy on the device (reading that waits for the device's queued work)."""
    counter = HostTransferCounter(monkeypatch)
    metrics = ["metrics=digits", "metrics.measures.digits.every=5", "metrics.measures.digits.kid=null",
               "metrics.measures.digits.precision_recall=null", "metrics.measures.digits.inception_score.samples=100",
               "metrics.measures.digits.fid={samples: 100, real: 100}", "trainer.enable_progress_bar=true"]
    module = run(tiny_cfg("norm=sn", "logger=none", *metrics, steps=12), callbacks=[counter])
    assert module.g_step == 12 and counter.quiet_batches == 9 and counter.calls == []
    assert "digits_fid/100_vs_train100" in module.trainer.callback_metrics  # measured at steps 5 and 10


class _FailingLibraryLoads(pl.Callback):
    """Counts the shared libraries that training steps try and fail to load (ctypes.CDLL raising OSError)."""

    def __init__(self, monkeypatch):
        self.inside_step, self.failed = False, 0
        original = ctypes.CDLL.__init__

        def counted(library, name, *args, **kwargs):
            try:
                original(library, name, *args, **kwargs)
            except OSError:
                self.failed += self.inside_step
                raise
        monkeypatch.setattr(ctypes.CDLL, "__init__", counted)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.inside_step = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.inside_step = False


def test_no_training_step_tries_to_load_a_missing_library(tiny_cfg, monkeypatch):
    """Lightning's PYTORCH_NVML_BASED_CUDA_CHECK=1 made every Adam step load NVML, and fail where there is no NVIDIA
    driver (a twentieth of a small model's update); the run unsets it there (sngan_repro.train)."""
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    loads = _FailingLibraryLoads(monkeypatch)
    with pytest.raises(OSError):
        ctypes.CDLL("libsngan_repro_test_missing.so")
    assert loads.failed == 0  # counted inside training steps only
    loads.inside_step = True
    with pytest.raises(OSError):
        ctypes.CDLL("libsngan_repro_test_missing.so")
    assert loads.failed == 1
    loads.inside_step, loads.failed = False, 0
    module = run(tiny_cfg("logger=none", steps=4), callbacks=[loads])
    assert module.g_step == 4 and loads.failed == 0


class _BackwardHooks(pl.Callback):
    def __init__(self):
        self.calls = []

    def on_before_backward(self, trainer, module, loss) -> None:
        self.calls.append("before")

    def on_after_backward(self, trainer, module) -> None:
        self.calls.append("after")


@pytest.mark.parametrize("precision", ["32-true", "16-mixed"])
def test_backward_hooks_run_and_backward_is_plain_when_nothing_hooks_into_it(tiny_cfg, tmp_path, precision):
    """The module calls loss.backward() itself when Lightning's backward would add nothing but the dispatch of empty
    hooks (32-bit precision, one device, no hook overridden); a callback's backward hooks, a loss scale, keep it."""
    overrides = ("logger=none", f"trainer.precision={precision}")
    plain = run(tiny_cfg(*overrides, steps=3, output_dir=tmp_path / "plain"))
    assert plain.plain_backward == (precision == "32-true")
    hooks = _BackwardHooks()
    hooked = run(tiny_cfg(*overrides, steps=3, output_dir=tmp_path / "hooked"), callbacks=[hooks])
    assert not hooked.plain_backward
    assert hooks.calls == ["before", "after"] * (hooked.d_step + hooked.g_step)
    for name, value in plain.state_dict().items():  # the same updates either way
        torch.testing.assert_close(hooked.state_dict()[name], value, rtol=0, atol=0)


# -- accelerations -------------------------------------------------------------------------------------
def _accelerated_run(tmp_path, *options: str, steps: int = 6):
    return run(compose(tiny_run_overrides(tmp_path, steps, "norm=sn", "logger=none", "train.log_every=1", *options)))


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    """The default (float32, contiguous, eager) run the accelerations are compared with."""
    module = _accelerated_run(tmp_path_factory.mktemp("float32"))
    return module.last_metrics, {name: value.clone() for name, value in module.state_dict().items()}


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16])
def test_normalizing_constants_are_computed_in_float32_under_autocast(autocast_dtype):
    torch.manual_seed(0)
    layer = spectral_norm(nn.Conv2d(16, 32, 3))
    parametrization = layer.parametrizations.weight[0]
    kernels = torch.randn(32, 16, 4, 4)
    with torch.autocast("cpu", dtype=autocast_dtype):
        weight = layer.weight  # one power step, then sigma = u^T W v
        constant = san_constant(kernels, (8, 8))
    original = layer.parametrizations.weight.original.double().flatten(1)
    expected_sigma = parametrization.u.double() @ original @ parametrization.v.double()
    assert parametrization.sigma.item() == pytest.approx(expected_sigma.item(), rel=1e-6)
    assert constant.dtype == weight.dtype == torch.float32
    assert constant.item() == pytest.approx(san_constant(kernels.double(), (8, 8)).item(), rel=1e-6)


@pytest.mark.slow
def test_bf16_mixed_trains_close_to_float32(tmp_path, float32_run):
    module = _accelerated_run(tmp_path, "trainer.precision=bf16-mixed")
    assert_same_losses(module.last_metrics, float32_run[0], LOSS_TOLERANCES["trainer.precision=bf16-mixed"])


@pytest.mark.slow
def test_channels_last_trains_as_the_default_layout(tmp_path, float32_run):
    module = _accelerated_run(tmp_path, "train.channels_last=true")
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)
    assert_same_losses(module.last_metrics, float32_run[0], LOSS_TOLERANCES["train.channels_last=true"])


# train.compile=true trains as the eager run does: tests/test_combinations.py
# (test_compiled_networks_keep_the_invariant_and_train_as_eager_ones), with SN and with SAN on the smallest critic.


@pytest.mark.slow
def test_device_resident_data_trains_on_the_same_batches(tmp_path, float32_run):
    module = _accelerated_run(tmp_path, "dataset.device_resident=true")
    weights = module.state_dict()
    assert all(torch.equal(weights[name], value) for name, value in float32_run[1].items())


def _rank_batches(device_resident: bool, rank: int, batches_consumed: int = 0) -> list[torch.Tensor]:
    """The first three training batches rank ``rank`` of two sees, in the generator's value range."""
    datamodule = DigitsDataModule(image_size=8, batch_size=8, heldout=10, device_resident=device_resident)
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=2, training=True,
                                         lightning_module=SimpleNamespace(dtype=torch.float32))
    datamodule.batches_consumed = batches_consumed  # as restored from a checkpoint
    loader = iter(datamodule.train_dataloader())
    return [datamodule.on_after_batch_transfer(datamodule.on_before_batch_transfer(next(loader), 0), 0)
            for _ in range(3)]


def test_device_resident_data_gives_each_ddp_rank_its_dataloader_batches():
    """Under DDP every rank draws the same batches from either path (also after a resume), and ranks differ."""
    for batches_consumed in (0, 5):
        per_rank = [_rank_batches(True, rank, batches_consumed) for rank in (0, 1)]
        for rank in (0, 1):
            expected = _rank_batches(False, rank, batches_consumed)
            assert all(torch.equal(got, want) for got, want in zip(per_rank[rank], expected))
        assert not any(torch.equal(a, b) for a, b in zip(*per_rank))


def test_device_resident_data_needs_a_dataset_held_in_memory(tmp_path):
    (tmp_path / "images").mkdir()
    for index in range(4):
        Image.fromarray(np.full((8, 8, 3), index, dtype=np.uint8)).save(tmp_path / "images" / f"{index}.png")
    datamodule = ImageFolderDataModule(root=str(tmp_path / "images"), image_size=8, batch_size=2, device_resident=True)
    with pytest.raises(ConfigError, match=r"^dataset.device_resident=true needs a dataset held in memory .* "
                                          r"use dataset.device_resident=false.$"):
        datamodule.setup()


@pytest.mark.slow
def test_float16_mixed_trains_close_to_float32(tmp_path, float32_run):
    module = _accelerated_run(tmp_path, "trainer.precision=16-mixed")
    assert isinstance(module.trainer.precision_plugin, PerNetworkLossScaling)
    # the first critic update overflows at the initial loss scale 2^16 and is skipped (the scale halves): one update
    # behind the float32 run, hence the wider tolerance
    assert module.trainer.precision_plugin.scalers["discriminator"].get_scale() == 2.0**15
    assert_same_losses(module.last_metrics, float32_run[0], LOSS_TOLERANCES["trainer.precision=16-mixed"])


@pytest.mark.slow
def test_float16_keeps_one_loss_scale_per_network(tmp_path, monkeypatch):
    critic_loss, calls = NonSaturatingLoss.discriminator, []

    def overflowing_once(self, d_real, d_fake):  # the 3rd critic loss overflows float16 in the backward pass
        calls.append(None)
        return critic_loss(self, d_real, d_fake) * (1e30 if len(calls) == 3 else 1.0)

    monkeypatch.setattr(NonSaturatingLoss, "discriminator", overflowing_once)
    module = _accelerated_run(tmp_path, "trainer.precision=16-mixed", "loss=nonsat", steps=4)
    scalers = module.trainer.precision_plugin.scalers
    assert scalers["discriminator"].get_scale() == 2.0**15  # halved once: that step was skipped
    assert scalers["generator"].get_scale() == 2.0**16  # untouched
