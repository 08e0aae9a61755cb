"""Xiang & Li's DCGAN (Table 1, App. D.3 / D.4) and 21-layer ResNet (Sec. 5.6) in their variants, and Mullery &
Whelan's iWGAN generator and critic: sizes, channel sequences, layer types, hooks and size errors."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import build_models, compose
from sngan_repro.errors import ConfigError
from sngan_repro.models.common import SameConv2d
from sngan_repro.nn import AffineWeightNorm, MeanOnlyBatchNorm, OutputHead, TPReLU, UnitNorm, WNAdd
from sngan_repro.normalizations.sparsity_aware import SparsityAwareScale

DCGAN_VARIANTS = ("vanilla", "bn", "wn", "wn_affine", "wn_mean_bn")
RESNET_VARIANTS = ("vanilla", "bn", "wn")


def _build(arch: str, size: int, *extra: str, norm: str = "none"):
    cfg = compose([f"arch={arch}", f"norm={norm}", "dataset=digits", f"dataset.image_size={size}",
                   "dataset.channels=3", *extra])
    return cfg, *build_models(cfg)


def _convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def _is_swn(layer: nn.Module) -> bool:
    return parametrize.is_parametrized(layer, "weight") and isinstance(layer.parametrizations.weight[0], UnitNorm)


def _kind(module: nn.Module) -> str | None:
    """Table 1's name of a layer (None for what the table does not list)."""
    if isinstance(module, AffineWeightNorm):
        assert _is_swn(module.layer)
        return "AWN"
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        return "SWN" if _is_swn(module) else "Conv"
    if isinstance(module, nn.BatchNorm2d):
        return "BN"
    if isinstance(module, MeanOnlyBatchNorm):
        return "MBN"
    if isinstance(module, nn.PReLU):
        return "TPReLU" if isinstance(module, TPReLU) else "PReLU"
    return None


def _table(*modules: nn.Module) -> list[str]:
    return [kind for module in modules for child in module.children() if (kind := _kind(child))]


# Table 1 for a network of n weight layers, by variant: (first layer, hidden normalization, activation, last layer)
_TABLE_1 = {"vanilla": ("Conv", [], "PReLU", "Conv"), "bn": ("Conv", ["BN"], "PReLU", "Conv"),
            "wn": ("SWN", [], "TPReLU", "AWN"), "wn_affine": ("AWN", [], "PReLU", "AWN"),
            "wn_mean_bn": ("AWN", ["MBN"], "PReLU", "AWN")}  # App. D.2: affine WN + mean-only BN where BN is


@pytest.mark.parametrize("variant", DCGAN_VARIANTS)
def test_dcgan_layer_types_follow_table_1(variant):
    _, generator, discriminator = _build("xiang_dcgan", 32, f"arch.variant={variant}")
    layer, norm, act, last = _TABLE_1[variant]
    hidden = "AWN" if variant.startswith("wn_") else layer
    # D: no BN on the first layer nor on the last; G: BN after every layer but the last (its first included)
    assert _table(discriminator.features, discriminator) == [
        layer, act, hidden, *norm, act, hidden, *norm, act, last]
    assert _table(generator, generator.body) == [layer, *norm, act, hidden, *norm, act, hidden, *norm, act, last]
    bias_free = [m for m in _convs(generator) + _convs(discriminator) if _is_swn(m)]
    assert all(m.bias is None for m in bias_free) and (len(bias_free) == 7) == variant.startswith("wn")
    # where mean-only BN follows, it carries the bias (Salimans & Kingma's y = t - mean(t) + b), not the AWN
    affine = [m for m in [*generator.modules(), *discriminator.modules()] if isinstance(m, AffineWeightNorm)]
    centered = [m for m in affine if m.beta is None]
    assert len(centered) == (sum(isinstance(m, MeanOnlyBatchNorm) for m in [*generator.modules(),
                                                                             *discriminator.modules()]))


def test_dcgan_celeba_channels_follow_table_1():
    _, generator, discriminator = _build("xiang_dcgan", 160, "arch.variant=bn")
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in _convs(discriminator)] == [
        (64, 4, 2, 1), (128, 4, 2, 1), (256, 4, 2, 1), (512, 4, 2, 1), (1024, 4, 2, 1), (1, 5, 1, 0)]
    assert generator.project.out_features == 1024 * 5 * 5 and generator.project.in_features == 256
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in _convs(generator)] == [
        (512, 4, 2), (256, 4, 2), (128, 4, 2), (64, 4, 2), (3, 4, 2)]


def test_dcgan_cifar_preset_follows_appendix_d3():
    _, generator, discriminator = _build("xiang_dcgan", 32, "arch.base_channels=96", "arch.final_size=4")
    assert [c.out_channels for c in _convs(discriminator)] == [96, 192, 384, 1]
    assert _convs(discriminator)[-1].kernel_size == (4, 4)
    assert generator.project.out_features == 384 * 4 * 4
    assert [c.out_channels for c in _convs(generator)] == [192, 96, 3]


# (image size, overrides, D's channels, final kernel): CIFAR-10 (App. D.3: 96, 192, 384), CelebA (Table 1: 64 ... 1024,
# here x 0.125) and LSUN bedroom (App. D.4: 64 ... 2048, here x 0.0625)
_DCGAN_SIZES = [(32, ("arch.base_channels=96",), [96, 192, 384], 4),
                (160, ("arch.width=0.125",), [8, 16, 32, 64, 128], 5),
                (256, ("arch.width=0.0625", "arch.latent_dim=512"), [4, 8, 16, 32, 64, 128], 4)]


@pytest.mark.parametrize("variant", DCGAN_VARIANTS)
@pytest.mark.parametrize("size,extra,widths,final", _DCGAN_SIZES)
def test_dcgan_shapes_and_range_at_paper_sizes(variant, size, extra, widths, final):
    cfg, generator, discriminator = _build("xiang_dcgan", size, f"arch.variant={variant}", *extra)
    images = generator(torch.randn(2, cfg.arch.latent_dim))
    assert images.shape == (2, 3, size, size) and images.min() >= 0 and images.max() <= 1
    assert discriminator(images).shape == (2,)
    assert [c.out_channels for c in _convs(discriminator)] == [*widths, 1]
    assert _convs(discriminator)[-1].kernel_size == (final, final)
    assert [c.out_channels for c in _convs(generator)] == [*widths[-2::-1], 3]


@pytest.mark.parametrize("variant", DCGAN_VARIANTS)
def test_dcgan_backward_reaches_every_parameter(variant):
    torch.manual_seed(0)
    _, generator, discriminator = _build("xiang_dcgan", 32, f"arch.variant={variant}", "arch.width=0.25")
    discriminator(generator(torch.randn(8, 256))).sum().backward()
    for name, parameter in [*generator.named_parameters(), *discriminator.named_parameters()]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def _residual_convs(block) -> list[nn.Module]:
    return [m for m in block.residual.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_resnet_has_21_weight_layers_and_the_paper_features():
    # Counting rule (Sec. 5.6): 10 residue blocks x 2 convs on the residual branch + the final conv = 21 for D,
    # the first dense layer + 20 for G; the 1x1 shortcut projections are not layers of the count.
    _, generator, discriminator = _build("xiang_resnet", 160, "arch.variant=vanilla")
    d_blocks = list(discriminator.blocks)
    g_blocks = [b for b in generator.blocks if hasattr(b, "residual")]
    assert len(d_blocks) == len(g_blocks) == 10
    assert sum(len(_residual_convs(b)) for b in d_blocks) + len(_convs(discriminator.classifier)) == 21
    assert 1 + sum(len(_residual_convs(b)) for b in g_blocks) == 21
    assert [b.residual[0].stride[0] for b in d_blocks] == [2, 1] * 5
    assert [b.residual[0].kernel_size[0] for b in d_blocks] == [4, 3] * 5
    assert [_residual_convs(b)[-1].out_channels for b in d_blocks] == [64, 64, 128, 128, 256, 256, 384, 384, 512, 512]
    assert discriminator.classifier.kernel_size == (5, 5) and discriminator.classifier.padding == (0, 0)
    assert generator.project.out_features == 512 * 5 * 5 and generator.project.in_features == 128
    assert [_residual_convs(b)[-1].out_channels for b in g_blocks] == [512, 384, 384, 256, 256, 128, 128, 64, 64, 3]
    assert [type(m).__name__ for m in d_blocks[0].shortcut] == ["AvgPool2d", "Conv2d"]
    assert [type(m).__name__ for m in g_blocks[-1].shortcut] == ["ConvTranspose2d", "Upsample"]
    assert len(d_blocks[1].shortcut) == len(g_blocks[0].shortcut) == 0  # identity shortcuts


@pytest.mark.parametrize("variant", RESNET_VARIANTS)
def test_resnet_shapes_at_160_px(variant):
    cfg, generator, discriminator = _build("xiang_resnet", 160, f"arch.variant={variant}", "arch.width=0.125")
    images = generator(torch.randn(2, cfg.arch.latent_dim))
    assert images.shape == (2, 3, 160, 160) and images.min() >= 0 and images.max() <= 1
    assert discriminator(images).shape == (2,)


def test_resnet_bn_on_the_residual_branches_but_not_at_the_ends():
    _, generator, discriminator = _build("xiang_resnet", 64, "arch.variant=bn", "arch.width=0.125")
    d_blocks = list(discriminator.blocks)
    g_blocks = [b for b in generator.blocks if hasattr(b, "residual")]
    kinds = [_table(b.residual) for b in d_blocks + g_blocks]
    assert kinds[0] == ["Conv", "PReLU", "Conv", "BN"]  # D's input conv: no BN (Table 1)
    assert kinds[-1] == ["Conv", "BN", "PReLU", "Conv"]  # G's output conv: no BN
    assert all(k == ["Conv", "BN", "PReLU", "Conv", "BN"] for k in kinds[1:-1])
    assert not any(isinstance(m, (WNAdd, TPReLU)) for m in [*generator.modules(), *discriminator.modules()])


def test_resnet_wn_uses_weight_normalized_addition_passing_the_shortcut_at_init():
    torch.manual_seed(0)
    _, generator, discriminator = _build("xiang_resnet", 64, "arch.variant=wn", "arch.width=0.125")
    g_blocks = [b for b in generator.blocks if hasattr(b, "residual")]
    assert all(isinstance(b.merge, WNAdd) for b in [*discriminator.blocks, *g_blocks])
    assert all(_is_swn(c) for b in [*discriminator.blocks, *g_blocks] for c in _convs(b))
    assert isinstance(discriminator.classifier, AffineWeightNorm)
    block = discriminator.blocks[0]  # stride 2, 3 -> 8 channels: avgpool + 1x1 conv on the shortcut
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(block(x), block.activation(block.shortcut(x)))
    assert not torch.allclose(block.residual(x), torch.zeros(()))  # the residual branch is there, weighted 0
    block = g_blocks[-1]  # generator's output block
    x = torch.randn(2, 8, 32, 32)
    torch.testing.assert_close(block(x), block.activation(block.shortcut(x)))


def test_resnet_vanilla_sums_the_branches():
    _, _, discriminator = _build("xiang_resnet", 64, "arch.variant=vanilla", "arch.width=0.125")
    block = discriminator.blocks[1]
    x = torch.randn(2, 8, 32, 32)
    torch.testing.assert_close(block(x), block.activation(block.residual(x) + x))


def test_iwgan_shapes_layers_and_critic_at_32_px():
    cfg, generator, critic = _build("iwgan", 32)
    assert cfg.arch.latent_dim == 64
    assert generator.project.in_features == 64 and generator.project.out_features == 4 * 4 * 1024
    assert [(c.out_channels, c.kernel_size[0]) for c in _convs(generator)] == [
        (1024, 5), (512, 3), (256, 5), (128, 5), (3, 7)]
    body = [type(m).__name__ for m in generator.body]
    assert body[:3] == ["Unflatten", "ReLU", "BatchNorm2d"]  # BN after ReLU, as in the notebook
    assert body.count("Upsample") == 3
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in _convs(critic)] == [
        (128, 3, 1, 0), (256, 4, 2, 0), (512, 4, 2, 0), (1024, 4, 2, 0)]
    # Keras "same" (TensorFlow's rule): out = ceil(in / stride), total padding (out - 1) stride + kernel - in, the
    # odd pixel after: 30 -> (1, 1) -> 15, 15 -> (1, 2) -> 8, 8 -> (1, 1) -> 4
    assert [m.same_pad for m in critic.modules() if isinstance(m, SameConv2d)] == [(1, 1, 1, 1), (1, 2, 1, 2),
                                                                                  (1, 1, 1, 1)]
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for c in _convs(critic)]
    critic(torch.zeros(1, 3, 32, 32))
    [hook.remove() for hook in hooks]
    assert sizes == [30, 15, 8, 4] and critic.classifier.in_features == 16384  # 1024 x 4 x 4, as in the notebook
    assert sum(isinstance(m, nn.LayerNorm) for m in critic.modules()) == 4
    assert {m.negative_slope for m in critic.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


def test_iwgan_layer_norm_is_over_the_channels_of_each_position():
    _, _, critic = _build("iwgan", 32, "arch.width=0.125")
    layer_norm = next(m for m in critic.modules() if isinstance(m, nn.LayerNorm))
    y = layer_norm(torch.randn(2, layer_norm.normalized_shape[0], 5, 5) * 3 + 1)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 5, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 5, 5), atol=1e-3, rtol=0)


@pytest.mark.parametrize("head", ["tanh", "bn_tanh", "bn_clip"])
def test_iwgan_takes_every_head(head):
    _, generator, critic = _build("iwgan", 32, f"arch.head={head}", "arch.width=0.125")
    heads = [m for m in generator.modules() if isinstance(m, OutputHead)]
    assert len(heads) == 1 and heads[0].kind == head
    images = generator(torch.randn(4, 64))
    assert images.shape == (4, 3, 32, 32) and images.abs().max() <= 1
    assert critic(images).shape == (4,)


def test_iwgan_critic_keeps_its_layer_norm_only():
    for norm in ("bn", "ln"):  # a second feature norm on the same activations is refused
        with pytest.raises(ConfigError, match=r"arch=iwgan's critic has its own layer norm"):
            _build("iwgan", 32, "arch.width=0.125", norm=norm)


@pytest.mark.parametrize("arch,extra,sizes", [
    ("xiang_dcgan", ("arch.variant=vanilla",), [32, 16, 8, 4]),
    ("iwgan", (), [32, 30, 15, 8, None]),
])
def test_discriminators_hand_every_weight_layer_and_its_input_size_to_the_norm(arch, extra, sizes):
    _, _, discriminator = _build(arch, 32, "arch.width=0.125", *extra, "norm.mode=reparametrization", "norm.dense=svd",
                                 norm="san")
    layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    scales = [next(p for p in m.parametrizations.weight if isinstance(p, SparsityAwareScale)) for m in layers]
    assert all(isinstance(s, SparsityAwareScale) for s in scales)
    assert [s.input_size[0] if s.input_size else None for s in scales] == sizes
    assert all(c.padding_mode == "circular" for c in _convs(discriminator) if c.padding[0])
    assert all(m.same_pad_mode == "circular" for m in discriminator.modules() if isinstance(m, SameConv2d))


def test_wn_discriminator_layers_take_the_norm_under_the_affine():
    _, _, discriminator = _build("xiang_resnet", 64, "arch.width=0.125", norm="sn")
    convs = _convs(discriminator)
    assert len(convs) == 21 + 5 and all(len(c.parametrizations.weight) == 2 for c in convs)  # SWN, then SN
    assert isinstance(discriminator.classifier, AffineWeightNorm)
    assert discriminator(torch.rand(2, 3, 64, 64)).shape == (2,)


@pytest.mark.parametrize("arch,overrides,message", [
    ("xiang_dcgan", ["dataset.image_size=100"],
     "arch=xiang_dcgan needs a dataset.image_size that halves down to a 5x5 or 4x4 feature map "
     "(e.g. 160 -> 5x5, 32 or 256 -> 4x4); got 100."),
    ("xiang_dcgan", ["dataset.image_size=32", "arch.final_size=5"],
     "arch=xiang_dcgan needs a dataset.image_size that halves down to a 5x5 (arch.final_size) feature map "
     "(e.g. 160 -> 5x5, 32 or 256 -> 4x4); got 32."),
    ("xiang_resnet", ["dataset.image_size=100"],
     "arch=xiang_resnet needs a dataset.image_size that is a multiple of 32 (one halving per level of "
     "arch.features; CelebA 160); got 100."),
    ("iwgan", ["dataset.image_size=20"],
     "arch=iwgan needs a dataset.image_size that is a multiple of 8 and at least 16 (32 for CIFAR-10); got 20."),
    ("xiang_resnet", ["arch.variant=wn_affine"], "arch.variant='wn_affine' is not one of vanilla, bn, wn."),
])
def test_unsupported_settings_get_one_sentence(arch, overrides, message):
    cfg = compose([f"arch={arch}", "norm=none", "dataset=digits", *overrides])
    with pytest.raises(ConfigError) as error:
        build_models(cfg)
    assert str(error.value) == message
