"""The invariant each critic normalization keeps, checked on the weights a trained critic applies against an
independent computation (an SVD, a DFT, row norms, the loss's own terms), and the tolerances within which an
acceleration option computes the float32 run's losses. Shared by the combination tests (tests/test_combinations.py,
tests/test_performance.py) and the device check (scripts/gpu_check.py), which runs them on a GPU."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils import parametrize

from helpers.combinations import SAN_G
from sngan_repro.nn import SpectralNorm, UnitNorm, output_dim
from sngan_repro.nn.spectra import san_constant
from sngan_repro.normalizations.sparsity_aware import SparsityAwareProjection, SparsityAwareScale
from sngan_repro.train import run


def weight_layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _stored(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight") else layer.weight


def _rows(weight: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """(output units, everything else), the matrix every method here is defined on."""
    return weight.detach().double().movedim(output_dim(layer), 0).flatten(1)


def _svd_sigma(weight: torch.Tensor, layer: nn.Module) -> float:
    return torch.linalg.svdvals(_rows(weight, layer))[0].item()


def parametrization_chain(layer: nn.Module) -> list[nn.Module]:
    return list(layer.parametrizations.weight) if parametrize.is_parametrized(layer, "weight") else []


def assert_spectrally_normalized(layer: nn.Module) -> None:
    """sigma of the applied weight by SVD: at least 1, as power iteration's u^T W v never exceeds sigma(W), and
    within 5% of it after the ~25 power steps of three updates (it converges from below, slowest on
    weight-normalized layers, whose singular values are close together)."""
    assert 1 - 1e-6 <= _svd_sigma(layer.weight, layer) <= 1.05


def _check_sn(module, initial):
    layers = [m for m in weight_layers(module.discriminator)
              if any(isinstance(p, SpectralNorm) for p in parametrization_chain(m))]
    assert len(layers) == len(weight_layers(module.discriminator))  # every critic weight, the dense one included
    for layer in layers:
        assert_spectrally_normalized(layer)


def _check_san(module, initial):
    layers = weight_layers(module.discriminator)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    for conv in convs:  # right after a refresh (every critic update): max |DFT| of the applied kernels = 1/g
        [constant] = [m for m in conv.modules() if isinstance(m, (SparsityAwareScale, SparsityAwareProjection))]
        # the conv's input size, independently: the map a forward pass brings to it
        assert constant.input_size == initial["conv_inputs"][conv], conv
        assert san_constant(conv.weight.double(), constant.input_size).item() == pytest.approx(1 / SAN_G, rel=1e-5)
    for dense in (m for m in layers if isinstance(m, nn.Linear)):  # "as in Miyato et al.": SN, or the exact sigma
        assert_spectrally_normalized(dense)


def _check_wn(module, initial):
    for layer in weight_layers(module.discriminator):
        assert isinstance(parametrization_chain(layer)[-1], UnitNorm)
        norms = _rows(layer.weight, layer).norm(dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms), rtol=1e-6, atol=1e-6)


def _check_clip(module, initial):
    assert all(p.detach().abs().max().item() <= 0.01 for p in module.discriminator.parameters())
    assert any(p.detach().abs().max().item() == pytest.approx(0.01) for p in module.discriminator.parameters())


def _check_feature(kind):
    def check(module, initial):
        layers = [m for m in module.discriminator.modules() if isinstance(m, kind)]
        assert layers and all(m.weight.detach().eq(1).all() and not m.weight.requires_grad for m in layers)  # no gain
        assert any(m.bias.detach().ne(0).any() for m in layers)  # the bias trains
    return check


def _check_penalty(module, initial):
    metrics = module.last_metrics
    assert metrics["loss/d_penalty"] > 0
    # with loss=wgan the rest of loss/d is E[D(G(z))] - E[D(x)], from the logged means of D's outputs
    adversarial = metrics["d_out/fake"] - metrics["d_out/real"]
    assert metrics["loss/d"] - metrics["loss/d_penalty"] == pytest.approx(adversarial, rel=1e-4, abs=1e-5)


def _check_ortho(module, initial):
    _check_penalty(module, initial)
    for stored in initial["stored"]:  # the initial stored weights: orthonormal operators
        matrix = stored.double().flatten(1)
        gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
        torch.testing.assert_close(gram, torch.eye(gram.shape[0], dtype=torch.float64, device=gram.device),
                                   atol=1e-5, rtol=0)


def _check_none(module, initial):
    assert not any(isinstance(p, (SpectralNorm, SparsityAwareScale)) for layer in weight_layers(module.discriminator)
                   for p in parametrization_chain(layer))
    assert not any(isinstance(m, (nn.GroupNorm, SparsityAwareProjection)) for m in module.discriminator.modules())


CHECKS = {"none": _check_none, "sn": _check_sn, "san_projection": _check_san, "san_reparametrization": _check_san,
          "san_svd_dense": _check_san,
          "wn": _check_wn, "clip": _check_clip, "gp": _check_penalty, "ortho": _check_ortho,
          "bn": _check_feature(nn.BatchNorm2d), "ln": _check_feature(nn.GroupNorm)}


class RecordStart(pl.Callback):
    """What the critic looked like before its first update: stored weights and every conv's input size."""

    def __init__(self):
        self.state = {}

    def on_train_start(self, trainer, module) -> None:
        critic = module.discriminator
        self.state["stored"] = [_stored(m).detach().clone() for m in weight_layers(critic)]
        sizes, hooks = {}, []

        def seen(conv, args):  # returns None: the input passes unchanged
            sizes.setdefault(conv, tuple(args[0].shape[-2:]))

        for layer in critic.modules():
            if isinstance(layer, nn.Conv2d):
                hooks.append(layer.register_forward_pre_hook(seen))
        critic.eval()
        with torch.no_grad():  # forward, not __call__: eagerly, also under train.compile (no eval-mode graph built)
            critic.forward(torch.zeros(1, module.cfg.dataset.channels, module.cfg.dataset.image_size,
                                       module.cfg.dataset.image_size, device=module.device))
        critic.train()
        for hook in hooks:
            hook.remove()
        self.state["conv_inputs"] = sizes  # convolutions pad inside their forward: these are unpadded sizes


def run_recording_start(cfg, callbacks=()):
    """The trained module and what its critic looked like before the first update (``RecordStart``)."""
    record = RecordStart()
    return run(cfg, callbacks=[record, *callbacks]), record.state


# the relative (and absolute) tolerance of the losses and mean critic outputs of a run with each option against the
# float32 run of the same combination, as the CPU tests (tests/test_performance.py, tests/test_combinations.py) hold
LOSS_TOLERANCES = {
    "trainer.precision=bf16-mixed": 2e-2,  # bfloat16 keeps ~3 significant digits
    # the first critic update overflows at the initial loss scale 2^16 and is skipped (the scale halves): one update
    # behind the float32 run
    "trainer.precision=16-mixed": 5e-2,
    "train.channels_last=true": 1e-4,
    "train.compile=true": 1e-4,
}
COMPARED = ("loss/d", "loss/g", "d_out/real", "d_out/fake")


def assert_same_losses(metrics: dict, reference: dict, rel: float) -> None:
    for name in COMPARED:
        assert metrics[name] == pytest.approx(reference[name], rel=rel, abs=rel), name
