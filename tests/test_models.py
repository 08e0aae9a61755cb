"""The SNGAN standard CNN (Miyato et al. Table 3): shapes at 32 and 48 px, layer structure,
the authors' code variant, and where spectral normalization is applied."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import build_models, compose


def _convs(module):
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


@pytest.mark.parametrize("arch", ["sngan_cnn", "sngan_cnn_code"])
@pytest.mark.parametrize("size", [32, 48])
def test_shapes_at_paper_sizes(arch, size):
    cfg = compose([f"arch={arch}", "dataset=digits", f"dataset.image_size={size}", "dataset.channels=3"])
    generator, discriminator = build_models(cfg)
    assert generator.project.out_features == 512 * (size // 8) ** 2  # dense -> Mg x Mg x 512
    images = generator(torch.randn(3, 128))
    assert images.shape == (3, 3, size, size)
    assert images.abs().max() <= 1  # tanh
    assert discriminator(images).shape == (3,)
    assert discriminator.classifier.in_features == 512 * (size // 8) ** 2


def test_discriminator_layers_follow_table_3():
    _, discriminator = build_models(compose(["norm=none"]))
    convs = _convs(discriminator)
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (64, 3, 1), (64, 4, 2), (128, 3, 1), (128, 4, 2), (256, 3, 1), (256, 4, 2), (512, 3, 1)]
    slopes = {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)}
    assert slopes == {0.1}


def test_generator_layers_follow_table_3():
    generator, _ = build_models(compose([]))
    convs = _convs(generator)
    assert [(type(c).__name__, c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [
        ("ConvTranspose2d", 256, 4, 2), ("ConvTranspose2d", 128, 4, 2), ("ConvTranspose2d", 64, 4, 2),
        ("Conv2d", 3, 3, 1)]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.modules()) == 4  # incl. after the dense layer


def test_code_variant_widths_slope_and_init():
    _, discriminator = build_models(compose(["arch=sngan_cnn_code", "norm=none"]))
    assert [c.out_channels for c in _convs(discriminator)] == [64, 128, 128, 256, 256, 512, 512]
    assert {m.negative_slope for m in discriminator.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    weights = torch.cat([c.weight.flatten() for c in _convs(discriminator)])
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)


def test_width_multiplier_scales_every_layer():
    generator, discriminator = build_models(compose(["arch.width=0.25"]))
    assert [c.out_channels for c in _convs(discriminator)] == [16, 16, 32, 32, 64, 64, 128]
    assert [c.out_channels for c in _convs(generator)] == [64, 32, 16, 3]


def test_spectral_norm_on_every_discriminator_weight_and_none_in_generator():
    generator, discriminator = build_models(compose(["norm=sn"]))
    weighted = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 8 and all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())
