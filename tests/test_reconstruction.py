"""Xiang & Li's reconstruction loss (Sec. 4): the optimization against closed forms, its invariances, and the
running metric in real tiny runs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_run_overrides
from pytorch_lightning import Callback
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from sngan_repro import train
from sngan_repro.callbacks import BestCheckpoint, MetricsCallback
from sngan_repro.errors import ConfigError
from sngan_repro.metrics.reconstruction import reconstruction_loss
from sngan_repro.models.sngan_cnn import Generator

SHAPE, LATENT = (1, 4, 4), 3
PIXELS = 16


def _linear_problem(seed: int = 0):
    """G(z) = A z + b as images (1, 4, 4) in [0, 1], and targets: 3 in the range of A, 3 (almost surely) not."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(PIXELS, LATENT, generator=generator) * 0.1
    b = 0.5 + 0.05 * torch.randn(PIXELS, generator=generator)
    layer = nn.Linear(LATENT, PIXELS)
    with torch.no_grad():
        layer.weight.copy_(a)
        layer.bias.copy_(b)
    inside = torch.randn(3, LATENT, generator=generator) @ a.T + b
    outside = torch.rand(3, PIXELS, generator=generator)
    targets = torch.cat([inside, outside]).view(-1, *SHAPE)
    assert targets.min() >= 0 and targets.max() <= 1
    return nn.Sequential(layer, nn.Unflatten(1, SHAPE)), a, b, targets


def test_linear_generator_reaches_the_least_squares_residual():
    generator, a, b, targets = _linear_problem()
    losses, _ = reconstruction_loss(generator, targets, LATENT, steps=2000, output_range=(0, 1))

    a64, x = a.double(), targets.double().flatten(1) - b.double()
    projection = a64 @ torch.linalg.pinv(a64)
    expected = (x - x @ projection.T).square().sum(1) / PIXELS  # ‖(I − A A⁺)(x − b)‖² / (C H W)
    assert expected[:3].max() < 1e-12 and expected[3:].min() > 1e-2  # 3 targets in range(A), 3 far from it

    # From z = 0 the optimum (|z*| of a few units) is reached in a few hundred steps of size ~lr; RMSProp with a
    # fixed lr then cycles within ~lr of z* per coordinate, so the loss stays above the minimum by at most
    # ‖A δ‖² / (CHW) <= σ_max(A)² · k · lr² / (CHW) (k = latent size); float32 rounding is far below that.
    floor = torch.linalg.matrix_norm(a64, ord=2) ** 2 * LATENT * 0.01**2 / PIXELS
    excess = losses.double() - expected
    assert excess.min() > -1e-7, excess  # it is a minimum: never below the closed form
    assert excess.max() <= floor, (excess, floor)


def test_zero_steps_give_the_loss_at_the_zero_code_in_eval_mode():
    generator = Generator(image_size=8, channels=3, latent_dim=8, width=0.125)
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    losses, reconstructions = reconstruction_loss(generator, images, 8, steps=0)

    with torch.no_grad():
        # BN running statistics (a train-mode batch of identical zero codes would have zero variance)
        at_zero = (generator.eval()(torch.zeros(5, 8)) + 1) / 2
    expected = (at_zero - images.float() / 255).square().flatten(1).mean(1)
    torch.testing.assert_close(losses, expected, rtol=1e-6, atol=0)
    assert reconstructions.dtype == torch.uint8
    assert torch.equal(reconstructions, at_zero.clamp(0, 1).mul(255).round().to(torch.uint8))


def test_generator_is_left_unchanged():
    generator = Generator(image_size=8, channels=3, latent_dim=8, width=0.125)
    generator.body[1].eval()  # a submodule in its own mode must keep it
    before = {name: value.clone() for name, value in generator.state_dict().items()}
    modes = {name: module.training for name, module in generator.named_modules()}
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))

    reconstruction_loss(generator, images, 8, steps=3)

    assert {name: module.training for name, module in generator.named_modules()} == modes
    assert modes[""] and not modes["body.1"]
    assert all(torch.equal(value, before[name]) for name, value in generator.state_dict().items())
    assert all(parameter.grad is None for parameter in generator.parameters())


def test_chunks_are_independent_problems():
    """Each code's gradient is its own image's, so one image at a time, in pairs, or all at once give the same
    losses. Only float rounding differs (different matmul shapes), amplified to ~3e-5 relative on the targets in
    range(A), whose loss (~1e-6) is RMSProp's limit cycle; with a MEAN over the batch instead of the sum, ε would
    see gradients 6x smaller and those losses would differ by ~6%."""
    generator, _, _, targets = _linear_problem()
    alone, _ = reconstruction_loss(generator, targets, LATENT, steps=500, output_range=(0, 1), chunk_size=1)
    in_pairs, _ = reconstruction_loss(generator, targets, LATENT, steps=500, output_range=(0, 1), chunk_size=2)
    together, _ = reconstruction_loss(generator, targets, LATENT, steps=500, output_range=(0, 1))
    torch.testing.assert_close(in_pairs, together, rtol=1e-3, atol=0)
    torch.testing.assert_close(alone, together, rtol=1e-3, atol=0)


def test_output_range_and_image_dtype_are_mapped_to_unit_range():
    unit, _, _, targets = _linear_problem()
    symmetric = _Affine(unit, scale=2.0, shift=-1.0)
    quantized = targets.mul(255).round().to(torch.uint8)

    reference, reconstructions = reconstruction_loss(unit, quantized.float() / 255, LATENT, 100, output_range=(0, 1))
    from_uint8, _ = reconstruction_loss(unit, quantized, LATENT, 100, output_range=(0, 1))
    from_symmetric, symmetric_reconstructions = reconstruction_loss(symmetric, quantized, LATENT, 100)

    torch.testing.assert_close(from_uint8, reference, rtol=1e-5, atol=1e-9)  # x / 255 up to float rounding
    torch.testing.assert_close(from_symmetric, reference, rtol=1e-5, atol=1e-9)
    assert (symmetric_reconstructions.int() - reconstructions.int()).abs().max() <= 1  # rounding ties at most
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        reconstruction_loss(unit, quantized.float() / 127.5 - 1, LATENT, 1)


class _Affine(nn.Module):
    """``scale · inner(z) + shift``: a [0, 1] generator seen in another output range."""

    def __init__(self, inner: nn.Module, scale: float, shift: float):
        super().__init__()
        self.inner, self.scale, self.shift = inner, scale, shift

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z) * self.scale + self.shift


# -- the metric in real runs ------------------------------------------------------------------------------------


class RecordBatches(Callback):
    """Every training batch, back in uint8 (exact: the datamodule maps uint8 affinely into (-1, 1))."""

    def __init__(self):
        self.images: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.images.append(batch.add(1).mul(127.5).round().to(torch.uint8).cpu())


def _reconstruction(every: int, images: int, steps: int) -> str:
    return (f"+metrics.measures.reconstruction={{_target_: sngan_repro.metrics.Reconstruction, every: {every}, "
            f"images: {images}, steps: {steps}}}")


RECORD_BATCHES = f"+callbacks.batches={{_target_: {__name__}.RecordBatches}}"


def _callback(module, kind):
    (callback,) = [callback for callback in module.trainer.callbacks if isinstance(callback, kind)]
    return callback


def _rows(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def test_running_loss_is_logged_and_keeps_the_best_checkpoint(tiny_cfg, tmp_path):
    name = "reconstruction/running_8img_5steps"
    extra = ("dataset=synthetic", "dataset.heldout=50", "train.diagnostics_every=0", _reconstruction(3, 8, 5))
    module = train.run(tiny_cfg(*extra, f"metrics.monitor={name}", RECORD_BATCHES, steps=7))
    metric, best = _callback(module, MetricsCallback).metrics["reconstruction"], _callback(module, BestCheckpoint)
    batches = _callback(module, RecordBatches)

    assert metric.names() == [name] and "8 held-out images" in metric.protocols()[name]
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    logged = {event.step: event.value for event in events.Scalars(name)}
    assert list(logged) == [0, 3, 6, 7]  # the untrained baseline, every 3 generator updates, the last one
    assert all(0 < value < 1 for value in logged.values())
    assert [event.step for event in events.Images("reconstruction/heldout_vs_reconstructed")] == [0, 3, 6, 7]
    assert float(module.trainer.callback_metrics[name]) == pytest.approx(logged[7])
    # the last value is the loss of the trained generator on the subset (recomputed here from the final weights)
    losses, _ = reconstruction_loss(module.generator, metric._share.cpu(), module.cfg.arch.latent_dim, 5,
                                    module.output_range)
    assert logged[7] == pytest.approx(losses.mean().item(), rel=1e-5)
    # checked at 3, 6 and 7 (the period of the monitored metric): the best of the three is kept
    assert float(best.best_model_score) == pytest.approx(min(logged[3], logged[6], logged[7]))
    assert [path.name for path in (tmp_path / "checkpoints").glob("best-*.ckpt")] == [Path(best.best_model_path).name]

    datamodule = module.trainer.datamodule
    heldout = _rows(metric._share.cpu())
    assert len(heldout) == 8 and heldout <= _rows(datamodule.heldout_set.images)
    trained_on = _rows(torch.cat(batches.images))
    assert len(batches.images) == 7 and trained_on <= _rows(datamodule.train_set.images)
    assert not trained_on & _rows(datamodule.heldout_set.images)

    # the evaluation touches neither the weights nor any random stream: training is as without it
    plain = train.run(tiny_cfg("dataset=synthetic", "dataset.heldout=50", "train.diagnostics_every=0", "logger=none",
                               steps=7, output_dir=tmp_path / "plain"))
    for key, value in plain.state_dict().items():
        assert torch.equal(value, module.state_dict()[key]), key


@pytest.mark.parametrize("heldout", [0, 5])
def test_without_enough_heldout_images_the_run_stops_before_training(tiny_cfg, tmp_path, heldout):
    message = (rf"^metrics.measures.reconstruction needs 8 held-out images but dataset.heldout={heldout}; "
               rf"set dataset.heldout to at least that \(Xiang & Li hold out 2,000\)\.$")
    with pytest.raises(ConfigError, match=message):
        train.run(tiny_cfg(f"dataset.heldout={heldout}", "train.diagnostics_every=0", "logger=none",
                           _reconstruction(10, 8, 5), RECORD_BATCHES))
    assert not (tmp_path / "checkpoints").exists()


_DDP_SCRIPT = """
import json, sys, time
from pathlib import Path
from sngan_repro import compose, train
from sngan_repro.callbacks import MetricsCallback

module = train.run(compose(json.loads(sys.argv[1])))
metric = next(c for c in module.trainer.callbacks if isinstance(c, MetricsCallback)).metrics["reconstruction"]
# each rank writes its own file (a child's stdout can be lost when the launcher's main process exits), and rank 0
# leaves only once every rank's file is there, so that no rank is stopped before it has written
folder, rank, world = Path(sys.argv[2]), module.global_rank, module.trainer.world_size
result = {"rank": rank, "share": metric._share.shape[0], "value": float(module.trainer.callback_metrics[metric.name])}
(folder / f"rank{rank}.part").write_text(json.dumps(result))
(folder / f"rank{rank}.part").rename(folder / f"rank{rank}.json")  # complete files only
deadline = time.monotonic() + 120
while rank == 0 and len(list(folder.glob("rank*.json"))) < world and time.monotonic() < deadline:
    time.sleep(0.1)
"""


@pytest.mark.slow
def test_callback_under_ddp_shares_the_work_and_agrees(tmp_path):
    """Two CPU processes (gloo): each reconstructs its share of the 7 images, both hold the same mean, none hangs."""
    script = tmp_path / "ddp_run.py"  # Lightning's DDP launcher re-runs the script for rank 1
    script.write_text(_DDP_SCRIPT)
    results = tmp_path / "results"
    results.mkdir()
    overrides = tiny_run_overrides(tmp_path, 4, "dataset=synthetic", "dataset.heldout=50", "train.diagnostics_every=0",
                                   "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                                   _reconstruction(3, 7, 5))
    result = subprocess.run([sys.executable, str(script), json.dumps(overrides), str(results)], capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((results / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [(r["rank"], r["share"]) for r in ranks] == [(0, 4), (1, 3)]
    assert ranks[0]["value"] == ranks[1]["value"]

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    logged = [(event.step, event.value) for event in events.Scalars("reconstruction/running_7img_5steps")]
    assert [step for step, _ in logged] == [0, 3, 4] and logged[-1][1] == pytest.approx(ranks[0]["value"])
