"""Xiang & Li, "On the Effects of Batch and Weight Normalization in Generative Adversarial Networks":
the DCGAN of Table 1 (Sec. 5.1, App. D.3 / D.4) and the 21-layer ResNet (Sec. 5.6), each in the paper's variants.

``arch.variant`` (one value for G and D):

- ``vanilla``: Conv + PReLU;
- ``bn``: Conv + BN + PReLU, with no BN on D's first layer nor on the last layers of D and G;
- ``wn``: strict weight-normalized layers (SWN) + TPReLU, affine WN (AWN) for the last layer of D and of G;
- ``wn_affine`` (DCGAN only): App. D.2's full-affine WN model, every layer AWN, PReLU;
- ``wn_mean_bn`` (DCGAN only): App. D.2's "WN plus mean-only Batch Normalization, as used in [Salimans & Kingma]": the
  full-affine WN model with mean-only BN wherever the BN model has BN (Table 5: running loss 0.016639).

The WN variants normalize the discriminator themselves and are meant with ``norm=none``; any other ``norm`` still
wraps every weight layer (on top of SWN) and puts its feature layer where the BN model has BN. The discriminators
return raw scores: the paper's final sigmoid is inside our losses, which take logits (``loss=nonsat`` is the
paper's sigmoid + BCE with the non-saturating generator loss).
"""

import math

import torch
from torch import nn

from ..errors import ConfigError
from ..nn import (
    AffineWeightNorm,
    Conv2d,
    MeanOnlyBatchNorm,
    OutputHead,
    SlopeClippedPReLU,
    TPReLU,
    WNAdd,
    output_dim,
    swn_conv2d,
    swn_conv_transpose2d,
    swn_linear,
)
from ..nn.xiang import ChannelAffine
from ..normalizations import Normalization
from .common import scale_widths

VARIANTS = ("vanilla", "bn", "wn", "wn_affine", "wn_mean_bn")
RESNET_VARIANTS = ("vanilla", "bn", "wn")  # Sec. 5.6 compares these three
# Final feature-map sizes of the paper's DCGANs: CelebA 160 -> 5x5 (Sec. 5.1), CIFAR-10 32 and LSUN 256 -> 4x4
# (App. D.3, D.4); ``final_size: null`` halves the image until it reaches either.
_PAPER_FINAL_SIZES = (5, 4)


def _torch7_init(layer: nn.Module) -> nn.Module:
    """Weight and bias from U(±1/√(c_in·k_w·k_h)), App. B's "as usual" (Torch7's reset).

    PyTorch's default matches for Conv2d and Linear but takes c_out as the fan-in of a transposed convolution.
    """
    fan_in = layer.weight.numel() // layer.weight.shape[output_dim(layer)]
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.uniform_(-bound, bound)
    return layer


class _Sum(nn.Module):
    """The plain residual sum of the vanilla and BN ResNets."""

    def forward(self, residual: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return residual + shortcut


class _Layers:
    """Makes one network's layers for a variant (Table 1).

    ``norm`` (discriminators only) receives every weight layer with its input size, pads the convolutions and puts
    its feature layer wherever the BN model may have BN; the generators pass None.
    """

    def __init__(self, variant: str, accepted: tuple[str, ...], norm: Normalization | None = None):
        if variant not in accepted:
            raise ConfigError(f"arch.variant={variant!r} is not one of {', '.join(accepted)}.")
        self.variant, self.norm = variant, norm
        self.weight_normalized = variant in ("wn", "wn_affine", "wn_mean_bn")

    def linear(self, in_features: int, out_features: int, code: bool = False) -> nn.Module:
        """A dense layer; ``code``: the generator's first layer (App. B: a WN fully-connected layer, U(±0.01/√c)),
        which ``after`` follows with normalization."""
        if self.weight_normalized:
            return self._finish(swn_linear(in_features, out_features, first_layer=code), None, False, True)
        return self._finish(_torch7_init(nn.Linear(in_features, out_features)), None, False, True)

    def conv(self, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, *,
             input_size: int | None = None, transposed: bool = False, last: bool = False,
             normalized: bool = True) -> nn.Module:
        """A (transposed) convolution; ``input_size``: the side of its input map (for ``norm``); ``normalized``: as
        the ``after`` that follows it."""
        if self.weight_normalized:
            layer = (swn_conv_transpose2d if transposed else swn_conv2d)(c_in, c_out, kernel, stride, padding)
        else:
            layer_class = nn.ConvTranspose2d if transposed else Conv2d
            layer = _torch7_init(layer_class(c_in, c_out, kernel, stride, padding))
        if self.norm is not None:
            # swn_conv2d takes no padding mode; nn.Conv2d reads the attribute at every forward.
            layer.padding_mode = self.norm.conv_padding_mode
        return self._finish(layer, None if input_size is None else (input_size, input_size), last, normalized)

    def _finish(self, layer: nn.Module, input_size, last: bool, normalized: bool) -> nn.Module:
        if self.norm is not None:
            layer = self.norm.wrap_weight_layer(layer, input_size=input_size)
        affine = self.variant in ("wn_affine", "wn_mean_bn") or (self.variant == "wn" and last)
        centered = self.variant == "wn_mean_bn" and normalized and not last  # mean-only BN follows with the bias
        return AffineWeightNorm(layer, bias=not centered) if affine else layer

    def after(self, num_channels: int, normalized: bool = True) -> list[nn.Module]:
        """What follows a weight layer before its activation: BN in the BN model (mean-only BN in the WN + mean-only
        BN model) and ``norm``'s feature layer, all only where ``normalized`` (Table 1: not after D's first layer
        nor after the last layers).

        Mean-only BN follows the AWN layer as App. D.2 builds it and carries Salimans & Kingma's bias b: their
        t = g v.x/||v||, y = t - mean(t) + b, so the AWN before it has no beta of its own (the mean subtraction
        would cancel it).
        """
        if not normalized:
            return []
        layers = {"bn": [nn.BatchNorm2d(num_channels)], "wn_mean_bn": [MeanOnlyBatchNorm(num_channels)]}
        return layers.get(self.variant, []) + ([self.norm.feature_layer(num_channels)] if self.norm is not None else [])

    def activation(self, num_channels: int) -> nn.Module:
        """TPReLU in the WN model, PReLU otherwise (the full-affine models included, App. D.2); per channel,
        slopes clipped to [0, 1] after every update."""
        return TPReLU(num_channels) if self.variant == "wn" else SlopeClippedPReLU(num_channels)

    def add(self, num_channels: int) -> nn.Module:
        """The residual sum: weight-normalized addition (App. B, eq. 17) in the WN model."""
        return WNAdd(num_channels) if self.weight_normalized else _Sum()

    def output_affine(self, num_channels: int) -> nn.Module:
        """What ends the ResNet generator's last block instead of an activation (the head follows): in the WN model
        the affine part of AWN, since the last weight-normalized addition has no bias and unit scale."""
        return ChannelAffine(num_channels) if self.weight_normalized else nn.Identity()


def _unsupported_size(arch: str, image_size: int, accepted: str) -> ConfigError:
    return ConfigError(f"arch={arch} needs a dataset.image_size that {accepted}; got {image_size}.")


def _dcgan_widths(image_size: int, base_channels: int, final_size: int | None, width: float) -> list[int]:
    """D's channels, one stride-2 layer per halving of the image down to the final map (doubling from the base)."""
    finals = _PAPER_FINAL_SIZES if final_size is None else (final_size,)
    size, halvings = image_size, 0
    while size > max(finals) and size % 2 == 0:
        size, halvings = size // 2, halvings + 1
    if size not in finals or halvings == 0:
        target = "5x5 or 4x4" if final_size is None else f"{final_size}x{final_size} (arch.final_size)"
        raise _unsupported_size("xiang_dcgan", image_size,
                                f"halves down to a {target} feature map (e.g. 160 -> 5x5, 32 or 256 -> 4x4)")
    return scale_widths([base_channels * 2**i for i in range(halvings)], width)


class DCGANDiscriminator(nn.Module):
    """Table 1 (top): [conv 4x4 s2 p1, (BN), (T)PReLU] with channels doubling from the base until the map is the
    final size, then conv (kernel = final size) -> 1 (AWN in the WN model). CelebA 160: 64, 128, 256, 512, 1024."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 variant: str = "wn", base_channels: int = 64, final_size: int | None = None):
        super().__init__()
        widths = _dcgan_widths(image_size, base_channels, final_size, width)
        make = _Layers(variant, VARIANTS, norm)
        layers: list[nn.Module] = []
        c_in, size = channels, image_size
        for index, c_out in enumerate(widths):
            layers += [make.conv(c_in, c_out, 4, 2, 1, input_size=size, normalized=index > 0),
                       *make.after(c_out, normalized=index > 0), make.activation(c_out)]
            c_in, size = c_out, size // 2
        self.features = nn.Sequential(*layers)
        self.classifier = make.conv(c_in, 1, size, input_size=size, last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The raw score: Table 1's sigmoid is applied by the loss, which takes logits.
        return self.classifier(self.features(x)).flatten()


class DCGANGenerator(nn.Module):
    """Table 1 (bottom), D's mirror: dense -> (top channels)x(final)^2, (BN), (T)PReLU -> [deconv 4x4 s2 p1, (BN),
    (T)PReLU] halving the channels -> deconv 4x4 s2 p1 -> channels (AWN in the WN model) -> head (sigmoid).

    The first layer is a dense layer in every variant: App. B's WN fully-connected layer for the WN variants and,
    as in the authors' code, nn.Linear for vanilla and BN (Table 1's 5x5 deconv of the 1x1 code up to bias sharing).
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int = 256, width: float = 1.0,
                 head: nn.Module | None = None, variant: str = "wn", base_channels: int = 64,
                 final_size: int | None = None):
        super().__init__()
        widths = _dcgan_widths(image_size, base_channels, final_size, width)[::-1]
        make = _Layers(variant, VARIANTS)
        size = image_size >> len(widths)
        self.project = make.linear(latent_dim, widths[0] * size * size, code=True)
        layers: list[nn.Module] = [nn.Unflatten(1, (widths[0], size, size)), *make.after(widths[0]),
                                   make.activation(widths[0])]
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [make.conv(c_in, c_out, 4, 2, 1, transposed=True), *make.after(c_out), make.activation(c_out)]
        layers += [make.conv(widths[-1], channels, 4, 2, 1, transposed=True, last=True),
                   head or OutputHead("sigmoid", channels, (0.0, 1.0))]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z))


class _ResidueBlock(nn.Module):
    """Sec. 5.6's basic block: ``activation(merge(residual(x), shortcut(x)))``.

    Discriminator: residual = conv (4x4 if stride 2 else 3x3, pad 1) -> [BN] -> act -> conv 3x3 -> [BN], channels
    changing at the first conv; shortcut = avgpool 2 if stride 2, then conv 1x1 if the channels change.
    Generator (``transposed``), the mirror image: residual = deconv 3x3 -> [BN] -> act -> deconv (4x4 s2 or 3x3),
    channels changing at the second deconv; shortcut = deconv 1x1 if the channels change, then nearest-neighbour
    upscaling x2. ``first`` (D's input block) and ``last`` (G's output block) drop BN at the network's ends, carrying
    Table 1's DCGAN rule over to the ResNet; ``last`` also replaces the final activation by ``output_affine``. Sec. 5.6
    does not say either and the authors' public code has no ResNet: both are our choices (docs/fidelity.md).
    """

    def __init__(self, make: _Layers, c_in: int, c_out: int, stride: int, size: int | None = None, *,
                 transposed: bool = False, first: bool = False, last: bool = False):
        super().__init__()
        kernel = 4 if stride == 2 else 3
        if transposed:
            mid = c_in
            conv1 = make.conv(c_in, mid, 3, 1, 1, transposed=True)
            conv2 = make.conv(mid, c_out, kernel, stride, 1, transposed=True)
            shortcut = [make.conv(c_in, c_out, 1, transposed=True)] if c_in != c_out else []
            shortcut += [nn.Upsample(scale_factor=2, mode="nearest")] if stride == 2 else []
        else:
            mid = c_out
            conv1 = make.conv(c_in, mid, kernel, stride, 1, input_size=size)
            conv2 = make.conv(mid, c_out, 3, 1, 1, input_size=size // stride)
            shortcut = [nn.AvgPool2d(2)] if stride == 2 else []
            shortcut += [make.conv(c_in, c_out, 1, input_size=size // stride)] if c_in != c_out else []
        self.residual = nn.Sequential(conv1, *make.after(mid, normalized=not first), make.activation(mid),
                                      conv2, *make.after(c_out, normalized=not last))
        self.shortcut = nn.Sequential(*shortcut)
        self.merge = make.add(c_out)
        self.activation = make.output_affine(c_out) if last else make.activation(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.merge(self.residual(x), self.shortcut(x)))


def _resnet_final_size(image_size: int, levels: int) -> int:
    if image_size % 2**levels or image_size < 2**levels:
        raise _unsupported_size("xiang_resnet", image_size,
                                f"is a multiple of {2**levels} (one halving per level of arch.features; CelebA 160)")
    return image_size >> levels


class ResNetDiscriminator(nn.Module):
    """Sec. 5.6: per level of ``features`` a stride-2 block then a stride-1 block, then conv (kernel = final map,
    5x5 at 160 px, no padding) -> 1, AWN in the WN model. 21 weight layers: 2 per block x 10 blocks + the final
    conv (the 1x1 shortcut projections are not counted, as in the paper's count)."""

    def __init__(self, image_size: int, channels: int, norm: Normalization, width: float = 1.0,
                 variant: str = "wn", features=(64, 128, 256, 384, 512)):
        super().__init__()
        _resnet_final_size(image_size, len(features))  # raises for sizes the levels cannot halve
        make = _Layers(variant, RESNET_VARIANTS, norm)
        blocks: list[nn.Module] = []
        c_in, size = channels, image_size
        for c_out in scale_widths(features, width):
            blocks += [_ResidueBlock(make, c_in, c_out, 2, size, first=not blocks),
                       _ResidueBlock(make, c_out, c_out, 1, size // 2)]
            c_in, size = c_out, size // 2
        self.blocks = nn.Sequential(*blocks)
        self.classifier = make.conv(c_in, 1, size, input_size=size, last=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The raw score: the paper's sigmoid is applied by the loss, which takes logits.
        return self.classifier(self.blocks(x)).flatten()


class ResNetGenerator(nn.Module):
    """Sec. 5.6's "mirror image" of the discriminator. What the mirror left open, decided here:

    - first layer: a dense layer code -> 512x5x5 (App. B: WN fully-connected in the WN model), (BN), (T)PReLU,
      mirroring D's final 5x5 conv; 21 weight layers = this dense layer + 2 per block x 10 blocks;
    - per level, from the top: a stride-1 block, then an upscaling block whose second deconv (and 1x1 shortcut
      deconv) changes the channels to the next level's, the last one to the image channels, so no extra output
      layer is added;
    - the last block has no BN on its output deconv (Table 1) and no activation: the head follows, preceded in the
      WN model by a per-channel affine (the last layer's AWN role). Our choice, like the rest of this list: Sec. 5.6
      gives only the discriminator, and the authors' public code has no ResNet.
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int = 128, width: float = 1.0,
                 head: nn.Module | None = None, variant: str = "wn", features=(64, 128, 256, 384, 512)):
        super().__init__()
        size = _resnet_final_size(image_size, len(features))
        features = scale_widths(features, width)[::-1]
        make = _Layers(variant, RESNET_VARIANTS)
        self.project = make.linear(latent_dim, features[0] * size * size, code=True)
        blocks: list[nn.Module] = [nn.Unflatten(1, (features[0], size, size)), *make.after(features[0]),
                                   make.activation(features[0])]
        outputs = [*features[1:], channels]
        for index, (c, c_next) in enumerate(zip(features, outputs)):
            blocks += [_ResidueBlock(make, c, c, 1, transposed=True),
                       _ResidueBlock(make, c, c_next, 2, transposed=True, last=index == len(features) - 1)]
        self.blocks = nn.Sequential(*blocks, head or OutputHead("sigmoid", channels, (0.0, 1.0)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.project(z))
