"""Every normalization on every architecture family, trained for a few steps with logging (and the spectral
diagnostics) at every step; then the method's invariant is checked on the weights the trained critic applies,
against an independent computation. A combination the project cannot serve is refused with one sentence before
any training."""

import math

import pytest
import pytorch_lightning as pl
import torch
from helpers.combinations import AUTOENCODERS, FAMILIES, NORMS, REFUSED, SAN_G, combination_overrides
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.nn import SpectralNorm, UnitNorm, output_dim
from sngan_repro.nn.spectra import san_constant
from sngan_repro.normalizations.sparsity_aware import SparsityAwareProjection, SparsityAwareScale
from sngan_repro.train import run


def _weight_layers(critic: nn.Module) -> list[nn.Module]:
    return [m for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _stored(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight") else layer.weight


def _rows(weight: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """(output units, everything else), the matrix every method here is defined on."""
    return weight.detach().double().movedim(output_dim(layer), 0).flatten(1)


def _svd_sigma(weight: torch.Tensor, layer: nn.Module) -> float:
    return torch.linalg.svdvals(_rows(weight, layer))[0].item()


def _chain(layer: nn.Module) -> list[nn.Module]:
    return list(layer.parametrizations.weight) if parametrize.is_parametrized(layer, "weight") else []


def _assert_spectrally_normalized(layer: nn.Module) -> None:
    """sigma of the applied weight by SVD: at least 1, as power iteration's u^T W v never exceeds sigma(W), and
    within 5% of it after the ~25 power steps of three updates (it converges from below, slowest on
    weight-normalized layers, whose singular values are close together)."""
    assert 1 - 1e-6 <= _svd_sigma(layer.weight, layer) <= 1.05


def _check_sn(module, initial):
    layers = [m for m in _weight_layers(module.discriminator) if any(isinstance(p, SpectralNorm) for p in _chain(m))]
    assert len(layers) == len(_weight_layers(module.discriminator))  # every critic weight, the dense one included
    for layer in layers:
        _assert_spectrally_normalized(layer)


def _check_san(module, initial):
    layers = _weight_layers(module.discriminator)
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    for conv in convs:  # right after a refresh (every critic update): max |DFT| of the applied kernels = 1/g
        [constant] = [m for m in conv.modules() if isinstance(m, (SparsityAwareScale, SparsityAwareProjection))]
        # the conv's input size, independently: the map a forward pass brings to it
        assert constant.input_size == initial["conv_inputs"][conv], conv
        assert san_constant(conv.weight.double(), constant.input_size).item() == pytest.approx(1 / SAN_G, rel=1e-5)
    for dense in (m for m in layers if isinstance(m, nn.Linear)):  # "as in Miyato et al.": SN, or the exact sigma
        _assert_spectrally_normalized(dense)


def _check_wn(module, initial):
    for layer in _weight_layers(module.discriminator):
        assert isinstance(_chain(layer)[-1], UnitNorm)
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
        torch.testing.assert_close(gram, torch.eye(gram.shape[0], dtype=torch.float64), atol=1e-5, rtol=0)


def _check_none(module, initial):
    assert not any(isinstance(p, (SpectralNorm, SparsityAwareScale)) for layer in _weight_layers(module.discriminator)
                   for p in _chain(layer))
    assert not any(isinstance(m, (nn.GroupNorm, SparsityAwareProjection)) for m in module.discriminator.modules())


CHECKS = {"none": _check_none, "sn": _check_sn, "san_projection": _check_san, "san_reparametrization": _check_san,
          "san_svd_dense": _check_san,
          "wn": _check_wn, "clip": _check_clip, "gp": _check_penalty, "ortho": _check_ortho,
          "bn": _check_feature(nn.BatchNorm2d), "ln": _check_feature(nn.GroupNorm)}


class _RecordStart(pl.Callback):
    """What the critic looked like before its first update: stored weights and every conv's input size."""

    def __init__(self):
        self.state = {}

    def on_train_start(self, trainer, module) -> None:
        critic = module.discriminator
        self.state["stored"] = [_stored(m).detach().clone() for m in _weight_layers(critic)]
        sizes, hooks = {}, []

        def seen(conv, args):  # returns None: the input passes unchanged
            sizes.setdefault(conv, tuple(args[0].shape[-2:]))

        for layer in critic.modules():
            if isinstance(layer, nn.Conv2d):
                hooks.append(layer.register_forward_pre_hook(seen))
        critic.eval()
        with torch.no_grad():  # forward, not __call__: eagerly, also under train.compile (no eval-mode graph built)
            critic.forward(torch.zeros(1, module.cfg.dataset.channels, module.cfg.dataset.image_size,
                                       module.cfg.dataset.image_size))
        critic.train()
        for hook in hooks:
            hook.remove()
        self.state["conv_inputs"] = sizes  # convolutions pad inside their forward: these are unpadded sizes


def _run_recording_start(cfg):
    """The trained module and what its critic looked like before the first update (``_RecordStart``)."""
    record = _RecordStart()
    return run(cfg, callbacks=[record]), record.state


@pytest.mark.slow
@pytest.mark.parametrize("norm", sorted(NORMS))
@pytest.mark.parametrize("family", sorted(FAMILIES | AUTOENCODERS))
def test_every_normalization_keeps_its_invariant_on_every_architecture(family, norm, tmp_path):
    cfg = compose(combination_overrides(family, norm, tmp_path))
    if (family, norm) in REFUSED:
        with pytest.raises(ConfigError, match=REFUSED[(family, norm)]) as error:
            run(cfg)
        assert str(error.value).count(". ") == 0 and not (tmp_path / "checkpoints").exists()  # one sentence, no run
        return

    module, initial = _run_recording_start(cfg)
    assert module.g_step == 3 and all(math.isfinite(v) for v in module.last_metrics.values()), module.last_metrics
    CHECKS[norm](module, initial)


@pytest.mark.parametrize("family", sorted(FAMILIES | AUTOENCODERS))
def test_generator_spectral_norm_holds_on_every_generator(family, tmp_path):
    """gen_norm=sn (Feng, Xu & Li): every conv, transposed conv and dense weight of any generator has sigma 1. Ten
    updates: a generator runs fewer power steps per update than the critic (two forwards instead of three). The
    critic's spectral diagnostics are off here: they measure the critic, and cost more than the updates."""
    critic_norm = "none" if family in AUTOENCODERS else "sn"
    module = run(compose([*combination_overrides(family, critic_norm, tmp_path), "gen_norm=sn", "train.steps=10",
                          "train.diagnostics_every=0"]))
    layers = [m for m in module.generator.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    assert layers and all(any(isinstance(p, SpectralNorm) for p in _chain(m)) for m in layers)
    for layer in layers:
        _assert_spectrally_normalized(layer)


def test_generator_normalizations_must_act_on_weights_only():
    from sngan_repro.models import normalize_generator
    from sngan_repro.normalizations import GradientPenalty, LayerNormalization, SparsityAwareNormalization

    for norm, name in ((GradientPenalty(), "gp"), (LayerNormalization(), "ln"), (SparsityAwareNormalization(), "san")):
        with pytest.raises(ConfigError, match=rf"gen_norm={name} acts on the critic's loss, features, updates or "
                                              r"padding, not only on weights; the generator accepts"):
            normalize_generator(nn.Sequential(nn.Linear(2, 3)), norm, name)


ACCELERATIONS = {"channels_last": ["train.channels_last=true"], "bf16": ["trainer.precision=bf16-mixed"]}
# SAN in reparametrization mode is accepted by every family and exercises the most machinery: a parametrization
# with a refresh, circular convolutions, SN on the dense layer.
ACCELERATED = [(option, family, "san_reparametrization") for option in ACCELERATIONS for family in sorted(FAMILIES)]


@pytest.mark.slow
@pytest.mark.parametrize("option, family, norm", ACCELERATED)
def test_accelerations_keep_the_invariant_on_every_architecture(option, family, norm, tmp_path):
    module, initial = _run_recording_start(compose([*combination_overrides(family, norm, tmp_path),
                                                    *ACCELERATIONS[option]]))
    assert module.g_step == 3 and all(math.isfinite(v) for v in module.last_metrics.values()), module.last_metrics
    CHECKS[norm](module, initial)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["san_reparametrization", "sn"])
def test_compiled_networks_keep_the_invariant_and_train_as_eager_ones(norm, tmp_path):
    """train.compile=true: torch.compile builds a graph per network and mode (training; no-grad for the samples and
    the diagnostics), a minute or more on a CPU, so the two normalizations whose state changes during training, on
    weight-normalized layers, in the smallest run (8 px: two critic convolutions): SAN's reparametrization (a refresh
    after every critic update) and SN, whose power step is taken eagerly (SpectralNorm._vectors) since the critic's
    forward on the fakes steps u and v before the backward of its forward on the real batch. The compiled run
    computes the losses the eager run of the same combination computes, keeps the method's invariant, and has the
    eager state dict's keys (checkpoints load either way)."""
    def overrides(name):
        return [*combination_overrides("xiang_dcgan_wn", norm, tmp_path / name), "dataset.image_size=8"]

    compiled, initial = _run_recording_start(compose([*overrides("compiled"), "train.compile=true"]))
    eager = run(compose(overrides("eager")))
    assert compiled.g_step == eager.g_step == 3
    for name in ("loss/d", "loss/g", "d_out/real", "d_out/fake"):
        assert compiled.last_metrics[name] == pytest.approx(eager.last_metrics[name], rel=1e-4, abs=1e-4), name
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    CHECKS[norm](compiled, initial)
