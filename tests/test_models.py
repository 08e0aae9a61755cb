"""The SNGAN standard CNN (Miyato et al. Table 3): shapes at 32 and 48 px, layer structure,
the authors' code variant, and where spectral normalization is applied."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import build_models, compose
from sngan_repro.nn import OutputHead


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


def _layers(module) -> list[str]:
    """Each layer of ``module`` in order, named as in the infoGAN-style architecture strings of the report's code."""
    names = []
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            names.append(f"FC{layer.out_features}")
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            kind = "dc" if isinstance(layer, nn.ConvTranspose2d) else "c"
            names.append(f"({layer.out_channels}){layer.kernel_size[0]}{kind}{layer.stride[0]}s")
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            names.append("B")
        elif isinstance(layer, nn.ReLU):
            names.append("R")
        elif isinstance(layer, nn.LeakyReLU):
            names.append(f"L{layer.negative_slope}")
        elif isinstance(layer, OutputHead):
            names.append({"tanh": "S"}.get(layer.kind, layer.kind))
    return names


def test_infogan_networks_are_the_reports_code():
    """Feng, Xu & Li's BEGAN_EBGAN_WAGAN_GP/*.py at its 28 px (RGB): G "FC1024_BR-FC7x7x128_BR-(64)4dc2s_BR-(1)4dc2s_S"
    (the image's channels out); WGAN_GP.py's critic "(64)4c2s-(128)4c2s_BL-FC1024_BL-FC1" with leaky ReLU 0.2;
    BEGAN.py's and EBGAN.py's autoencoders (64)4c2s_R-FC32-FC64*14*14[_BR]-(C)4dc2s, their energies the mean |x - D(x)|
    and mean (x - D(x))^2 (nn.MSELoss); N(0, 0.02) weights and zero biases everywhere (utils.initialize_weights)."""
    common = ["dataset=digits", "dataset.image_size=28", "dataset.channels=3"]
    generator, critic = build_models(compose(["arch=infogan", "loss=wgan", "norm=gp", *common]))
    assert _layers(generator) == ["FC1024", "B", "R", f"FC{7 * 7 * 128}", "B", "R", "(64)4dc2s", "B", "R",
                                  "(3)4dc2s", "S"]
    assert _layers(critic) == ["(64)4c2s", "L0.2", "(128)4c2s", "B", "L0.2", "FC1024", "B", "L0.2", "FC1"]
    began, ebgan = (build_models(compose([f"arch=infogan_{m}", f"loss={m}", "norm=none", *common]))[1]
                    for m in ("began", "ebgan"))
    assert _layers(began) == ["(64)4c2s", "R", "FC32", f"FC{64 * 14 * 14}", "(3)4dc2s"]
    assert _layers(ebgan) == ["(64)4c2s", "R", "FC32", f"FC{64 * 14 * 14}", "B", "R", "(3)4dc2s"]
    weighted = [m for network in (generator, critic, began, ebgan) for m in network.modules()
                if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    assert torch.cat([m.weight.flatten() for m in weighted]).std().item() == pytest.approx(0.02, rel=0.02)
    assert all(m.bias.abs().max() == 0 for m in weighted)
    x = torch.rand(5, 3, 28, 28) * 2 - 1
    for critic, power in ((began, 1), (ebgan, 2)):
        energies, codes = critic.energies_and_embeddings(x)
        reconstruction = critic.decoder(critic.encoder(x))
        assert codes.shape == (5, 32) and reconstruction.shape == x.shape
        torch.testing.assert_close(energies, (reconstruction - x).abs().pow(power).mean(dim=(1, 2, 3)))


def test_infogan_critic_refuses_a_second_feature_normalization():
    from sngan_repro.errors import ConfigError

    for norm in ("bn", "ln"):
        with pytest.raises(ConfigError, match=r"^arch=infogan's critic has its own batch norm"):
            build_models(compose(["arch=infogan", f"norm={norm}", "dataset=digits", "dataset.image_size=28"]))


def test_layer_normalized_generator_has_layer_norm_in_place_of_every_batch_norm():
    """arch.generator.feature_norm=layer (the report's LN row as its code ran): layer norm over each sample's (C, H, W)
    with a per-channel gain and bias where Table 3 has BN, after the dense layer and every transposed conv."""
    from sngan_repro.errors import ConfigError

    generator, _ = build_models(compose(["arch=sngan_cnn_code", "arch.generator.feature_norm=layer"]))
    norms = [m for m in generator.modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
    assert [(type(m).__name__, m.num_groups, m.num_channels, m.affine) for m in norms] == [
        ("GroupNorm", 1, c, True) for c in (512, 256, 128, 64)]
    features = torch.randn(4, 256, 8, 8) * 3 + 1
    expected = (features - features.mean(dim=(1, 2, 3), keepdim=True)) / (
        features.var(dim=(1, 2, 3), unbiased=False, keepdim=True) + norms[1].eps).sqrt()
    torch.testing.assert_close(norms[1](features), expected)  # gain 1 and bias 0 at the start
    with pytest.raises(ConfigError, match=r"^arch.generator.feature_norm='instance' is not one of batch, layer\.$"):
        build_models(compose(["arch.generator.feature_norm=instance"]))

