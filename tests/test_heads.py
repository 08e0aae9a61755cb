"""Generator output heads (Mullery & Whelan): tanh, BN + tanh, BN + clip initialized from data."""

import math

import pytest
import torch
from conftest import digits_pixel_statistics, group_options

from sngan_repro import build_models, compose
from sngan_repro.errors import ConfigError
from sngan_repro.nn import OutputHead
from sngan_repro.train import run


def test_heads_match_their_formulas():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4) * 2 + 0.5
    torch.testing.assert_close(OutputHead("tanh", 3)(x), torch.tanh(x))
    variance = x.var((0, 2, 3), unbiased=False, keepdim=True)
    standardized = (x - x.mean((0, 2, 3), keepdim=True)) / (variance + 1e-5).sqrt()
    torch.testing.assert_close(OutputHead("bn_tanh", 3)(x), torch.tanh(standardized), rtol=1e-4, atol=1e-5)
    head = OutputHead("bn_clip", 3)
    head.initialize_from_data(torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.5, 0.6, 0.7]))
    expected = (standardized * torch.tensor([0.5, 0.6, 0.7]).view(1, 3, 1, 1)
                + torch.tensor([0.1, -0.2, 0.3]).view(1, 3, 1, 1)).clamp(-1, 1)
    torch.testing.assert_close(head(x), expected, rtol=1e-4, atol=1e-5)


def test_bn_clip_clips_to_the_output_range():
    head = OutputHead("bn_clip", 1, output_range=(0.0, 1.0))
    y = head(torch.randn(16, 1, 4, 4) * 5)
    assert y.min() >= 0 and y.max() <= 1 and (y == 0).any() and (y == 1).any()


def test_tanh_heads_refuse_other_ranges():
    with pytest.raises(ConfigError, match="arch.head='bn_tanh' produces"):
        OutputHead("bn_tanh", 3, output_range=(0.0, 1.0))
    with pytest.raises(ConfigError, match="arch.head='sigmoid' produces"):
        OutputHead("sigmoid", 3)
    with pytest.raises(ConfigError, match="arch.head='softmax' is not one of tanh, sigmoid, bn_tanh, bn_clip"):
        OutputHead("softmax", 3)
    ones = torch.ones(1, 2, 1, 1)
    torch.testing.assert_close(OutputHead("sigmoid", 2, (0, 1))(ones), ones / (1 + math.exp(-1)))


def _generator_heads():
    """Every architecture with every head its output range admits."""
    pairs = []
    for arch in group_options("arch"):
        low = compose([f"arch={arch}"]).arch.output_range[0]
        pairs += [(arch, head) for head in (("tanh", "bn_tanh", "bn_clip") if low < 0 else ("sigmoid", "bn_clip"))]
    return pairs


@pytest.mark.parametrize("arch,head", _generator_heads())
def test_every_generator_takes_every_head(arch, head):
    cfg = compose([f"arch={arch}", f"arch.head={head}", "arch.width=0.125", "norm=none"])  # any critic takes none
    generator, _ = build_models(cfg)
    heads = [m for m in generator.modules() if isinstance(m, OutputHead)]
    assert len(heads) == 1 and heads[0].kind == head
    images = generator(torch.randn(4, cfg.arch.latent_dim))
    low, high = cfg.arch.output_range
    assert images.min() >= low and images.max() <= high


def test_bn_clip_starts_from_the_training_set_statistics(tiny_cfg):
    module = run(tiny_cfg("arch.head=bn_clip", "arch.head_frozen=true", "logger=none", steps=2))
    head = next(m for m in module.generator.modules() if isinstance(m, OutputHead))
    mean, std = digits_pixel_statistics(16)  # independent: the digits at 16 px, in [-1, 1]
    assert head.norm.bias.item() == pytest.approx(mean.item(), abs=1e-5)
    assert head.norm.weight.item() == pytest.approx(std.item(), abs=1e-5)
    assert not head.norm.weight.requires_grad  # frozen: unchanged by the two updates
