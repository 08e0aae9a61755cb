"""Xiang & Li, "On the Effects of Batch and Weight Normalization in GANs": layers and activations.

- Strict weight-normalized layers (SWN, eq. 4): ``y = wᵀx / ‖w‖`` per output unit, no bias, with
  ε = 1e-6 added to the sum of squares inside the root (App. B). Built on ``weight_norm.UnitNorm``,
  so ``layer.weight`` is the normalized weight actually applied.
- Affine weight-normalized layers (AWN): ``y = γ · wᵀx / ‖w‖ + β``; their per-channel affine part alone
  (``ChannelAffine``) also ends the WN ResNet generator (``models.xiang``).
- TPReLU / TReLU (eq. 10): a (parametric) ReLU translated by a learned per-channel threshold α.
- Weight-normalized addition (App. B, eq. 17) for residual blocks.
- Mean-only batch normalization (Salimans & Kingma 2016, Sec. 3), for App. D.2's WN + mean-only BN model.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .conv import Conv2d
from .weight_norm import output_dim, unit_norm

_EPS = 1e-6  # App. B: "a numerical stability term ε = 1e-6 is added to the sum of squared weights"


def _per_channel(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a (C,) tensor so that it broadcasts over dim 1 of ``like`` (N, C, *spatial)."""
    return values.view(-1, *([1] * (like.dim() - 2)))


def _strict_weight_norm(layer: nn.Module, scale: float = 1.0, init_gain: float = 1.0) -> nn.Module:
    """Draw the layer's weight from U(±init_gain / √fan_in) (App. B), then register SWN on it.

    fan_in = c_in·k_w·k_h for convolutions and c_in for linear layers: the length of each
    normalized weight vector, i.e. all weight elements but the output dimension.
    """
    fan_in = layer.weight.numel() // layer.weight.shape[output_dim(layer)]
    bound = init_gain / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
    return unit_norm(layer, eps=_EPS, scale=scale)


def swn_linear(in_features: int, out_features: int, first_layer: bool = False) -> nn.Linear:
    """Strict weight-normalized fully-connected layer ``y = wᵀx / ‖w‖``, each output unit normalized.

    The generator's first layer (1×1 code → f·h·w) is this layer with ``first_layer=True``
    (App. B), which initializes from U(±0.01/√c_in) instead of U(±1/√c_in).
    """
    layer = nn.Linear(in_features, out_features, bias=False)
    return _strict_weight_norm(layer, init_gain=0.01 if first_layer else 1.0)


def swn_conv2d(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> nn.Conv2d:
    """Strict weight-normalized convolution ``y = wᵀx / ‖w‖``, norm over (in, kh, kw) per output channel.

    No stride correction: App. B's "strided and transposed convolutional layers" is read as strided
    transposed convolutions, because every output element of a strided convolution sees the whole
    kernel, so the full-kernel norm already normalizes it.
    """
    layer = Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
    return _strict_weight_norm(layer)


def swn_conv_transpose2d(in_channels: int, out_channels: int, kernel_size, stride=1, padding=0) -> nn.ConvTranspose2d:
    """Strict weight-normalized transposed convolution, output multiplied by √(d_w·d_h) (App. B).

    Each output element only receives about 1/(d_w·d_h) of the kernel taps, so the full-kernel norm
    is divided by √(d_w·d_h), the strides.
    """
    layer = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
    return _strict_weight_norm(layer, scale=math.sqrt(math.prod(layer.stride)))


class ChannelAffine(nn.Module):
    """``y = γ·x + β`` per channel, γ (init 1) and β (init 0): the affine part of AWN. With ``bias=False`` there is
    no β."""

    def __init__(self, num_channels: int, bias: bool = True):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_channels))
        self.beta = nn.Parameter(torch.zeros(num_channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * _per_channel(self.gamma, x)
        return y if self.beta is None else y + _per_channel(self.beta, x)


class AffineWeightNorm(ChannelAffine):
    """Affine weight-normalized layer ``y = γ · (wᵀx / ‖w‖) + β``: a ``ChannelAffine`` applied to a layer's output.

    Wraps any strict weight-normalized layer (``swn_linear``, ``swn_conv2d``, ``swn_conv_transpose2d``). With
    ``bias=False`` there is no β: where mean-only BN follows, it carries the bias (Salimans & Kingma, Sec. 3).
    A subclass rather than a ChannelAffine member, so the gain and bias keep their state-dict names
    (``gamma``, ``beta`` beside ``layer``).
    """

    def __init__(self, layer: nn.Module, bias: bool = True):
        super().__init__(layer.weight.shape[output_dim(layer)], bias)
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.layer(x))


class SlopeClippedPReLU(nn.PReLU):
    """A per-channel PReLU whose slopes are projected to [0, 1] after every optimizer step
    (``project_after_step_``, the loop's protocol): the authors' Lua code projects the stored parameter."""

    @torch.no_grad()
    def project_after_step_(self) -> None:
        self.weight.clamp_(0.0, 1.0)


class TPReLU(SlopeClippedPReLU):
    """Translated parametric ReLU: ``y = x`` for x ≥ α, ``y = α + a(x − α)`` for x < α (eq. 10, Table 1).

    That is ``α + PReLU_a(x − α)``: the data are translated by −α, rectified and translated back.
    A ``SlopeClippedPReLU``: ``weight`` holds the per-channel slope a, clipped to [0, 1] after every update;
    ``threshold`` holds α. With
    ``learn_slope=False`` the slope is a buffer fixed at ``slope_init``.
    """

    def __init__(
        self, num_channels: int, slope_init: float = 0.25, threshold_init: float = 0.0, learn_slope: bool = True
    ):
        super().__init__(num_channels, init=slope_init)
        if not learn_slope:
            # A buffer rather than requires_grad=False, which model.requires_grad_(True) would undo.
            slope = self.weight.detach()
            del self.weight
            self.register_buffer("weight", slope)
        self.threshold = nn.Parameter(torch.full((num_channels,), threshold_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold = _per_channel(self.threshold, x)
        return F.prelu(x - threshold, self.weight) + threshold


class TReLU(TPReLU):
    """Translated ReLU ``y = ReLU(x − α) + α`` (eq. 10): a TPReLU whose slope is fixed at 0."""

    def __init__(self, num_channels: int, threshold_init: float = 0.0):
        super().__init__(num_channels, slope_init=0.0, threshold_init=threshold_init, learn_slope=False)


class WNAdd(nn.Module):
    """Weight-normalized addition ``y = (w₁x₁ + w₂x₂) / √(w₁² + w₂²)`` (App. B, eq. 17).

    One (w₁, w₂) pair per channel, shared across space; w₁ = 0 on the residual branch and w₂ = 1 on
    the shortcut at init, so the shortcut passes through unchanged. No ε: the output is invariant
    to the scale of (w₁, w₂), so its gradient is orthogonal to the pair and gradient steps only
    grow its norm away from the singular (0, 0).
    """

    def __init__(self, num_channels: int):
        super().__init__()
        self.residual_weight = nn.Parameter(torch.zeros(num_channels))
        self.shortcut_weight = nn.Parameter(torch.ones(num_channels))

    def forward(self, residual: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        norm = torch.hypot(self.residual_weight, self.shortcut_weight)
        residual_weight = _per_channel(self.residual_weight / norm, residual)
        shortcut_weight = _per_channel(self.shortcut_weight / norm, shortcut)
        return residual_weight * residual + shortcut_weight * shortcut


class MeanOnlyBatchNorm(nn.Module):
    """Mean-only batch normalization (Salimans & Kingma 2016, Sec. 3): ``y = x - mean(x) + b`` per channel, the mean
    over the batch and positions in training (the gradient flows through it, as in BN) and a running mean (momentum
    0.1, as nn.BatchNorm2d) in eval mode; no variance normalization, no scale."""

    def __init__(self, num_channels: int, momentum: float = 0.1):
        super().__init__()
        self.momentum = momentum
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.register_buffer("running_mean", torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=[d for d in range(x.dim()) if d != 1])
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
        else:
            mean = self.running_mean
        return x - _per_channel(mean, x) + _per_channel(self.bias, x)
