"""Xiang & Li's weight-normalized layers and activations, each checked against an explicit computation."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_repro.nn import (
    AffineWeightNorm,
    SlopeClippedPReLU,
    TPReLU,
    TReLU,
    WNAdd,
    projected_layers,
    swn_conv2d,
    swn_conv_transpose2d,
    swn_linear,
)

EPS = 1e-6


def normalized(weight: torch.Tensor, out_dim: int, scale: float = 1.0) -> torch.Tensor:
    """scale * W / sqrt(‖w‖² + ε) per output unit, by flattening each unit's weights into one row."""
    rows = weight.transpose(0, out_dim).flatten(1)
    norms = rows.pow(2).sum(1).add(EPS).sqrt()
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    return scale * weight / norms.view(shape)


def interior_channel_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and variance over positions whose receptive field avoids the zero padding."""
    y = y[:, :, 1:-1, 1:-1].transpose(0, 1).flatten(1)
    return y.mean(1), y.var(1)


# (layer, explicit forward with the original weight W, input shape)
CASES = {
    "conv_stride1": (
        lambda: swn_conv2d(16, 8, 3, stride=1, padding=1),
        lambda x, w: F.conv2d(x, normalized(w, 0), stride=1, padding=1),
        (64, 16, 24, 24),
    ),
    "conv_stride2": (
        lambda: swn_conv2d(16, 8, 4, stride=2, padding=1),
        lambda x, w: F.conv2d(x, normalized(w, 0), stride=2, padding=1),
        (64, 16, 24, 24),
    ),
    "conv_transpose_stride2": (
        lambda: swn_conv_transpose2d(16, 8, 4, stride=2, padding=1),
        lambda x, w: F.conv_transpose2d(x, normalized(w, 1, scale=2.0), stride=2, padding=1),
        (16, 16, 24, 24),
    ),
    "linear": (
        lambda: swn_linear(256, 32),
        lambda x, w: x @ normalized(w, 0).T,
        (16384, 256),
    ),
}


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def original_weight(layer: nn.Module) -> torch.Tensor:
    return layer.parametrizations.weight.original


@pytest.mark.parametrize("case", CASES)
def test_swn_output_matches_explicit_formula(case):
    make_layer, explicit, shape = CASES[case]
    layer = make_layer()
    x = torch.randn(4, *shape[1:])
    assert layer.bias is None
    torch.testing.assert_close(layer(x), explicit(x, original_weight(layer)))


@pytest.mark.parametrize("case", ["conv_stride1", "conv_stride2", "conv_transpose_stride2"])
def test_swn_conv_normalizes_unit_gaussian_input(case):
    make_layer, _, shape = CASES[case]
    with torch.no_grad():
        mean, var = interior_channel_stats(make_layer()(torch.randn(shape)))
    torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=0.03)
    torch.testing.assert_close(var, torch.ones_like(var), rtol=0, atol=0.05)


def test_swn_linear_normalizes_unit_gaussian_input():
    make_layer, _, shape = CASES["linear"]
    with torch.no_grad():
        y = make_layer()(torch.randn(shape))
    torch.testing.assert_close(y.mean(0), torch.zeros(y.shape[1]), rtol=0, atol=0.03)
    torch.testing.assert_close(y.var(0), torch.ones(y.shape[1]), rtol=0, atol=0.05)


def test_transposed_conv_needs_the_stride_correction():
    make_layer, _, shape = CASES["conv_transpose_stride2"]
    layer = make_layer()
    w = original_weight(layer)
    # each output unit o: its (in, kh, kw) weights w[:, o] over sqrt(‖w[:, o]‖² + ε), times √(2·2) (App. B)
    for unit in range(w.shape[1]):
        torch.testing.assert_close(layer.weight[:, unit], 2.0 * w[:, unit] / (w[:, unit].square().sum() + EPS).sqrt())
    expected = layer.weight.detach()

    x = torch.randn(shape)
    with torch.no_grad():
        _, corrected_var = interior_channel_stats(layer(x))
        _, uncorrected_var = interior_channel_stats(F.conv_transpose2d(x, expected / 2.0, stride=2, padding=1))
    torch.testing.assert_close(corrected_var, torch.ones_like(corrected_var), rtol=0, atol=0.05)
    torch.testing.assert_close(uncorrected_var, torch.full_like(uncorrected_var, 0.25), rtol=0, atol=0.0125)


def test_strided_conv_has_no_stride_correction():
    layer = swn_conv2d(16, 8, 4, stride=2, padding=1)
    norms = layer.weight.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_eps_is_inside_the_square_root():
    layer = swn_linear(3, 2)
    tiny = 1e-4
    with torch.no_grad():
        original_weight(layer).zero_()
        original_weight(layer)[0, 1] = tiny
    expected = tiny / math.sqrt(tiny**2 + EPS)  # ≈ 0.0995, where w / |w| would give 1
    torch.testing.assert_close(layer.weight[0, 1].item(), expected)
    assert layer.weight[0, 1].item() < 0.2
    assert torch.equal(layer.weight[1], torch.zeros(3))


@pytest.mark.parametrize("case", CASES)
def test_gradient_flows_through_the_norm(case):
    make_layer, explicit, shape = CASES[case]
    layer = make_layer()
    x = torch.randn(2, *shape[1:])
    output_grad = torch.randn_like(explicit(x, original_weight(layer)))

    (grad,) = torch.autograd.grad((layer(x) * output_grad).sum(), original_weight(layer))
    w = original_weight(layer).detach().clone().requires_grad_()
    (expected,) = torch.autograd.grad((explicit(x, w) * output_grad).sum(), w)
    torch.testing.assert_close(grad, expected)


@pytest.mark.parametrize("case", CASES)
def test_affine_weight_norm(case):
    make_layer, explicit, shape = CASES[case]
    awn = AffineWeightNorm(make_layer())
    x = torch.randn(4, *shape[1:])
    strict = explicit(x, original_weight(awn.layer))
    channels = strict.shape[1]
    torch.testing.assert_close(awn(x), strict)  # γ = 1, β = 0 at init

    gamma, beta = torch.randn(channels), torch.randn(channels)
    with torch.no_grad():
        awn.gamma.copy_(gamma)
        awn.beta.copy_(beta)
    expected = torch.stack([gamma[c] * strict[:, c] + beta[c] for c in range(channels)], dim=1)
    torch.testing.assert_close(awn(x), expected)


@pytest.mark.parametrize("shape", [(8, 5), (4, 5, 6, 6)])
def test_tprelu_matches_piecewise_definition(shape):
    layer = TPReLU(5)
    assert torch.equal(layer.weight, torch.full((5,), 0.25))
    assert torch.equal(layer.threshold, torch.zeros(5))

    alpha, slope = torch.randn(5), torch.rand(5)
    with torch.no_grad():
        layer.threshold.copy_(alpha)
        layer.weight.copy_(slope)
    x = torch.randn(shape) * 2
    broadcast = (1, 5) + (1,) * (len(shape) - 2)
    alpha, slope = alpha.view(broadcast), slope.view(broadcast)
    expected = torch.where(x >= alpha, x, alpha + slope * (x - alpha))
    torch.testing.assert_close(layer(x), expected)


def test_trelu_is_translated_relu_without_learnable_slope():
    layer = TReLU(5)
    assert [name for name, _ in layer.named_parameters()] == ["threshold"]
    assert not layer.requires_grad_(True).weight.requires_grad

    alpha = torch.randn(5)
    with torch.no_grad():
        layer.threshold.copy_(alpha)
    x = torch.randn(4, 5, 6, 6) * 2
    alpha = alpha.view(1, 5, 1, 1)
    torch.testing.assert_close(layer(x), F.relu(x - alpha) + alpha)


def test_slope_clipped_prelu_and_tprelu_ask_the_loop_to_clip_their_slopes():
    """The loop's protocol (nn.protocols): the layers that need it say so; a plain nn.PReLU is left alone."""
    model = nn.Sequential(SlopeClippedPReLU(4), nn.Sequential(TPReLU(4)), TReLU(4), nn.PReLU(4))
    optimizer = torch.optim.SGD(model.parameters(), lr=40.0)
    # All inputs below the thresholds, so y = -a per channel (thresholds 0): channel 0 is pushed
    # above 1, channel 1 below 0, channel 2 stays and channel 3 moves within [0, 1].
    direction = torch.tensor([1.0, -1.0, 0.0, 0.01]).view(1, 4, 1, 1)
    x = -torch.ones(2, 4, 3, 3)
    loss = sum((layer(x) * direction).mean() for layer in (model[0], model[1], model[3])) + model[2](x).mean()
    loss.backward()
    optimizer.step()

    slopes = [model[0].weight, model[1][0].weight]
    for slope in [*slopes, model[3].weight]:
        assert slope[0] > 1 and slope[1] < 0
    stepped = [slope.detach().clone() for slope in slopes]
    thresholds, plain = model[1][0].threshold.detach().clone(), model[3].weight.detach().clone()

    assert projected_layers(model) == [model[0], model[1][0], model[2]]
    for layer in projected_layers(model):
        layer.project_after_step_()
    for slope, before in zip(slopes, stepped):
        assert torch.equal(slope[:2], torch.tensor([1.0, 0.0]))
        assert torch.equal(slope[2:], before[2:])
        assert 0.25 < slope[3] < 1
    assert torch.equal(model[1][0].threshold, thresholds)
    assert torch.equal(model[2].weight, torch.zeros(4))
    assert torch.equal(model[3].weight, plain)


def test_wn_add_passes_shortcut_at_init():
    add = WNAdd(8)
    residual, shortcut = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
    assert torch.equal(add(residual, shortcut), shortcut)


def test_wn_add_matches_formula():
    add = WNAdd(8)
    w1, w2 = torch.randn(8), torch.randn(8)
    with torch.no_grad():
        add.residual_weight.copy_(w1)
        add.shortcut_weight.copy_(w2)
    residual, shortcut = torch.randn(4, 8, 5, 5), torch.randn(4, 8, 5, 5)
    expected = torch.stack(
        [(w1[c] * residual[:, c] + w2[c] * shortcut[:, c]) / math.sqrt(w1[c] ** 2 + w2[c] ** 2) for c in range(8)],
        dim=1,
    )
    torch.testing.assert_close(add(residual, shortcut), expected)


def assert_uniform_within(weight: torch.Tensor, bound: float):
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.95 * bound
    assert abs(weight.abs().mean().item() - bound / 2) < 0.05 * bound  # E|U(-b, b)| = b/2


def test_first_layer_init():
    code_length = 256
    layer = swn_linear(code_length, 64 * 4 * 4, first_layer=True)
    assert_uniform_within(original_weight(layer), 0.01 / math.sqrt(code_length))


def test_default_linear_init():
    assert_uniform_within(original_weight(swn_linear(256, 512)), 1 / math.sqrt(256))


@pytest.mark.parametrize("make_layer", [swn_conv2d, swn_conv_transpose2d])
def test_conv_init(make_layer):
    in_channels, kernel = 32, 4
    layer = make_layer(in_channels, 8, kernel, stride=2, padding=1)
    assert_uniform_within(original_weight(layer), 1 / math.sqrt(in_channels * kernel * kernel))


def test_mean_only_batch_norm_matches_salimans_and_kingma():
    """y = x - mean over (batch, positions) + b per channel in training; the running mean in eval mode."""
    from sngan_repro.nn import MeanOnlyBatchNorm

    torch.manual_seed(0)
    layer = MeanOnlyBatchNorm(3)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
    x = torch.randn(4, 3, 5, 5) * 2 + 7
    expected = torch.stack([x[:, c] - x[:, c].mean() + layer.bias[c] for c in range(3)], 1)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.running_mean, 0.1 * x.mean((0, 2, 3)))  # momentum 0.1 from 0
    assert torch.equal(layer(x).var((0, 2, 3)), x.var((0, 2, 3)))  # no variance normalization
    layer.eval()
    torch.testing.assert_close(layer(x), x - layer.running_mean.view(1, 3, 1, 1) + layer.bias.view(1, 3, 1, 1))
