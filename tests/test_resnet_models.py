"""The SAN paper's 3x3 standard CNN (Kligvasser & Michaeli Table 4) and the ResNets of Miyato et al.
(CIFAR-10 32 px, STL-10 48 px) and of the SAN paper (Tables 5, 6): shapes, layer structure against
the papers, initialization, parameter counts, and how the normalizations reach every critic layer."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import build_models, compose
from sngan_repro.errors import ConfigError
from sngan_repro.models.resnet import DownBlock, UpBlock
from sngan_repro.nn import Conv2d, SpectralNorm
from sngan_repro.normalizations.sparsity_aware import PROJECTION_ATTRIBUTE

SERVED = [(arch, size) for arch in ("san_cnn", "sngan_resnet", "san_resnet") for size in (32, 48)]
RESNETS = ("sngan_resnet", "san_resnet")


def _build(arch: str, size: int, *extra: str):
    return build_models(compose([f"arch={arch}", "dataset=digits", f"dataset.image_size={size}",
                                 "dataset.channels=3", *extra]))


def _weighted(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _block_widths(module: nn.Module, kind: type) -> list[int]:
    """Output channels of each residual block (its residual branch's last conv)."""
    return [[m for m in b.residual if isinstance(m, nn.Conv2d)][-1].out_channels
            for b in module.modules() if isinstance(b, kind)]


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch,size", SERVED)
def test_shapes_and_gradients_reach_every_parameter(arch, size):
    torch.manual_seed(0)
    generator, discriminator = _build(arch, size, "arch.width=0.125")
    images = generator(torch.randn(4, 128))
    assert images.shape == (4, 3, size, size) and images.abs().max() <= 1  # tanh
    scores = discriminator(images)
    assert scores.shape == (4,)
    scores.sum().backward()
    for name, parameter in [*generator.named_parameters(), *discriminator.named_parameters()]:
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_san_cnn_uses_3x3_kernels_throughout():
    generator, discriminator = _build("san_cnn", 32, "norm=none")
    assert [(c.out_channels, c.kernel_size, c.stride) for c in _weighted(discriminator)[:-1]] == [
        (64, (3, 3), (1, 1)), (64, (3, 3), (2, 2)), (128, (3, 3), (1, 1)), (128, (3, 3), (2, 2)),
        (256, (3, 3), (1, 1)), (256, (3, 3), (2, 2)), (512, (3, 3), (1, 1))]
    assert discriminator.classifier.in_features == 512 * 4 * 4
    assert {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)} == {0.1}
    convs = _weighted(generator)[1:]
    assert [(type(c).__name__, c.out_channels, c.kernel_size, c.stride, c.output_padding) for c in convs] == [
        ("ConvTranspose2d", 256, (3, 3), (2, 2), (1, 1)), ("ConvTranspose2d", 128, (3, 3), (2, 2), (1, 1)),
        ("ConvTranspose2d", 64, (3, 3), (2, 2), (1, 1)), ("Conv2d", 3, (3, 3), (1, 1), (0, 0))]
    assert generator.project.out_features == 512 * 4 * 4


@pytest.mark.parametrize("arch", RESNETS)
@pytest.mark.parametrize("size,dense,blocks", [(32, 256 * 4 * 4, [256, 256, 256]), (48, 512 * 6 * 6, [256, 128, 64])])
def test_resnet_generators_follow_the_tables(arch, size, dense, blocks):
    generator, _ = _build(arch, size)
    assert generator.project.out_features == dense
    assert _block_widths(generator, UpBlock) == blocks
    upsamplers = [m for m in generator.modules() if isinstance(m, nn.Upsample)]
    assert len(upsamplers) == 2 * len(blocks)  # residual branch and shortcut of every block
    assert all(m.mode == "nearest" and m.scale_factor == 2 for m in upsamplers)
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(upsamplers[0](x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


@pytest.mark.parametrize(
    "arch,size,widths,final_side",
    [("sngan_resnet", 32, [128, 128, 128, 128], 8), ("san_resnet", 32, [128, 128, 128, 128], 8),
     ("sngan_resnet", 48, [64, 128, 256, 512, 1024], 3), ("san_resnet", 48, [64, 128, 256, 512], 3)],
)
def test_resnet_critics_follow_the_tables(arch, size, widths, final_side):
    _, discriminator = _build(arch, size, "norm=none")
    blocks = [b for b in discriminator.modules() if isinstance(b, DownBlock)]
    assert _block_widths(discriminator, DownBlock) == widths
    first, second = blocks[0], blocks[1]
    # Miyato's first block: conv on the image (no ReLU before it); shortcut avgpool then 1x1 conv
    assert isinstance(first.residual[0], nn.Conv2d) and isinstance(first.residual[-1], nn.AvgPool2d)
    assert [type(m) for m in first.shortcut] == [nn.AvgPool2d, Conv2d]
    # later down blocks: ReLU first; shortcut 1x1 conv then avgpool
    assert isinstance(second.residual[0], nn.ReLU)
    assert [type(m) for m in second.shortcut] == [Conv2d, nn.AvgPool2d]
    if size == 32:  # the last two blocks neither pool nor change width: identity shortcut
        assert all(isinstance(b.shortcut, nn.Identity) for b in blocks[2:])
        assert not any(isinstance(m, nn.AvgPool2d) for b in blocks[2:] for m in b.modules())
    assert discriminator.features(torch.randn(1, 3, size, size)).shape[-2:] == (final_side, final_side)
    assert discriminator.classifier.in_features == widths[-1] and discriminator.classifier.bias is None


@pytest.mark.parametrize("arch,reduce", [("sngan_resnet", torch.sum), ("san_resnet", torch.mean)])
@pytest.mark.parametrize("size", [32, 48])
def test_global_sum_or_average_pooling(arch, reduce, size):
    _, discriminator = _build(arch, size, "norm=none", "arch.width=0.125")
    seen = {}
    discriminator.features.register_forward_hook(lambda m, args, out: seen.update(features=out))
    discriminator.classifier.register_forward_pre_hook(lambda m, args: seen.update(pooled=args[0]))
    discriminator(torch.randn(2, 3, size, size))
    assert seen["features"].shape[-1] > 1  # the pooled map has several positions, so sum != average
    torch.testing.assert_close(seen["pooled"], reduce(seen["features"], dim=(2, 3)))


def _xavier_bound(layer: nn.Module, gain: float) -> float:
    fan_in, fan_out = layer.weight[0].numel(), layer.weight.shape[0] * layer.weight[0, 0].numel()
    return gain * math.sqrt(6 / (fan_in + fan_out))


def test_resnet_init_is_xavier_uniform_with_miyatos_gains():
    torch.manual_seed(0)
    generator, discriminator = _build("sngan_resnet", 32, "norm=none")
    block, down = next(m for m in generator.modules() if isinstance(m, UpBlock)), discriminator.features[1]
    cases = [(block.residual[3], math.sqrt(2)), (block.residual[6], math.sqrt(2)), (block.shortcut[1], 1.0),
             (down.residual[1], math.sqrt(2)), (down.residual[4], math.sqrt(2)), (down.shortcut[0], 1.0),
             (generator.project, 1.0), (generator.body[-2], 1.0)]
    for layer, gain in cases:
        bound = _xavier_bound(layer, gain)
        assert 0.98 * bound < layer.weight.abs().max().item() <= bound
        assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # std of U(-b, b)
        assert not layer.bias.any()
    assert discriminator.classifier.weight.abs().max() <= _xavier_bound(discriminator.classifier, 1.0)


def test_stl10_critic_parameter_counts_match_the_san_paper():
    """SAN Sec. 4.1: removing Miyato's last residual block cuts the critic from 19.5M to 4.8M parameters."""
    miyato = _count(_build("sngan_resnet", 48, "norm=none")[1])
    san = _count(_build("san_resnet", 48, "norm=none")[1])
    assert miyato == pytest.approx(19.5e6, rel=0.02) and san == pytest.approx(4.8e6, rel=0.02)
    assert 1 - san / miyato == pytest.approx(0.75, abs=0.01)  # "cuts its number of parameters by 75%"


@pytest.mark.parametrize("arch,size", SERVED)
def test_san_pads_circularly_and_sees_each_convs_input_size(arch, size):
    generator, discriminator = _build(arch, size, "norm=san", "arch.width=0.125")
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    seen = {}

    def record(conv, args):
        seen[conv] = tuple(args[0].shape[-2:])

    for conv in convs:
        conv.register_forward_pre_hook(record)
    discriminator(torch.randn(2, 3, size, size))
    assert len(seen) == len(convs)
    for conv in convs:  # the default projection mode: a child that rescales the stored weight
        assert conv.padding_mode == "circular"
        assert getattr(conv, PROJECTION_ATTRIBUTE).input_size == seen[conv]
    # the dense layer: spectral norm, "as in Miyato et al."
    assert [type(p) for p in discriminator.classifier.parametrizations.weight] == [SpectralNorm]
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())


# Weight layers of each critic, from the papers' tables: the standard CNN's 7 convs + dense (SAN Table 4); a ResNet
# critic's 2 convs per block, a 1x1 shortcut conv in every block that pools or changes the width, and the dense layer
# (Miyato et al. Tables 4, 5: 32 px two of four blocks pool; 48 px four pool and the 1024 block widens; SAN Table 6:
# the 1024 block removed).
_CRITIC_WEIGHT_LAYERS = [("san_cnn", 32, 7 + 1), ("sngan_resnet", 32, 2 * 4 + 2 + 1), ("san_resnet", 32, 2 * 4 + 2 + 1),
                         ("sngan_resnet", 48, 2 * 5 + 5 + 1), ("san_resnet", 48, 2 * 4 + 4 + 1)]


@pytest.mark.parametrize("arch,size,count", _CRITIC_WEIGHT_LAYERS)
def test_spectral_norm_on_every_critic_weight_and_none_in_generator(arch, size, count):
    generator, discriminator = _build(arch, size, "norm=sn", "arch.width=0.125")
    weighted = _weighted(discriminator)
    assert len(weighted) == count and all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())


@pytest.mark.parametrize("arch", RESNETS)
def test_feature_normalization_follows_every_residual_conv_but_the_first(arch):
    _, discriminator = _build(arch, 32, "norm=bn", "arch.width=0.125")
    followers = [type(b.residual[i + 1]) for b in discriminator.features if isinstance(b, DownBlock)
                 for i, m in enumerate(b.residual) if isinstance(m, nn.Conv2d)]
    assert followers == [nn.ReLU] + [nn.BatchNorm2d] * 7


def test_width_multiplies_every_resnet_channel_count():
    generator, discriminator = _build("sngan_resnet", 48, "arch.width=0.25", "norm=none")
    assert generator.project.out_features == 128 * 6 * 6
    assert _block_widths(generator, UpBlock) == [64, 32, 16]
    assert _block_widths(discriminator, DownBlock) == [16, 32, 64, 128, 256]
    assert discriminator.classifier.in_features == 256


@pytest.mark.parametrize("arch", RESNETS)
def test_resnets_refuse_other_image_sizes_in_one_sentence(arch):
    message = r"^The ResNet layouts \(arch.generator.layouts\) serve image sizes 32, 48; got dataset.image_size=40\.$"
    with pytest.raises(ConfigError, match=message):
        _build(arch, 40)


def test_san_cnn_refuses_sizes_not_divisible_by_8():
    with pytest.raises(ConfigError, match="divisible by 8.*got dataset.image_size=20"):
        _build("san_cnn", 20)
