"""Every normalization on every architecture family, trained for a few steps with logging (and the spectral
diagnostics) at every step; then the method's invariant (tests/helpers/invariants.py) is checked on the weights the
trained critic applies, against an independent computation. A combination the project cannot serve is refused with
one sentence before any training."""

import math

import pytest
from helpers.combinations import AUTOENCODERS, FAMILIES, NORMS, REFUSED, combination_overrides
from helpers.invariants import (
    CHECKS,
    LOSS_TOLERANCES,
    assert_same_losses,
    assert_spectrally_normalized,
    parametrization_chain,
    run_recording_start,
)
from torch import nn

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.nn import SpectralNorm
from sngan_repro.train import run


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

    module, initial = run_recording_start(cfg)
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
    assert layers and all(any(isinstance(p, SpectralNorm) for p in parametrization_chain(m)) for m in layers)
    for layer in layers:
        assert_spectrally_normalized(layer)


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
    module, initial = run_recording_start(compose([*combination_overrides(family, norm, tmp_path),
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

    compiled, initial = run_recording_start(compose([*overrides("compiled"), "train.compile=true"]))
    eager = run(compose(overrides("eager")))
    assert compiled.g_step == eager.g_step == 3
    assert_same_losses(compiled.last_metrics, eager.last_metrics, LOSS_TOLERANCES["train.compile=true"])
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    CHECKS[norm](compiled, initial)
