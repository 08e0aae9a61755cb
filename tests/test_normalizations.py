"""Every discriminator normalization against an independent computation: SVDs, explicit
convolution matrices, and the papers' formulas."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from sngan_repro import build_models, compose
from sngan_repro.diagnostics import conv_operator_norm, power_iteration_sigma, san_constant, sn_estimate
from sngan_repro.models import build_normalization
from sngan_repro.normalizations import (
    BatchNormalization,
    GradientPenalty,
    LayerNormalization,
    OrthonormalRegularization,
    SparsityAwareNormalization,
    SpectralNormalization,
    WeightClipping,
    WeightNormalization,
    compensation_factor,
)


def _spectral_norm(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.matrix_norm(matrix.detach().double(), ord=2)


# -- spectral normalization ---------------------------------------------------------------------

def _converged_sn_conv(seed=0):
    torch.manual_seed(seed)
    layer = SpectralNormalization().wrap_weight_layer(nn.Conv2d(8, 16, 3))
    for _ in range(300):  # one power step per training-mode access
        _ = layer.weight
    return layer


def test_sn_normalized_weight_has_unit_sigma():
    layer = _converged_sn_conv()
    exact = _spectral_norm(layer.parametrizations.weight.original.flatten(1))
    assert torch.allclose(power_iteration_sigma(layer).double(), exact, rtol=1e-4)
    assert torch.allclose(sn_estimate(layer.parametrizations.weight.original).double(), exact, rtol=1e-6)
    assert abs(torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item() - 1) < 1e-3


def test_sn_gradient_flows_through_sigma():
    layer = _converged_sn_conv().eval()  # eval: no power step, u and v stay fixed
    original = layer.parametrizations.weight.original
    probe = torch.randn_like(original)
    (ours,) = torch.autograd.grad((layer.weight * probe).sum(), original)
    reference_weight = original.detach().clone().requires_grad_(True)
    sigma = torch.linalg.matrix_norm(reference_weight.flatten(1), ord=2)  # autograd: d sigma / dW = u v^T
    (reference,) = torch.autograd.grad((reference_weight / sigma * probe).sum(), reference_weight)
    torch.testing.assert_close(ours, reference, rtol=1e-3, atol=1e-5)
    detached = (probe / sigma.detach())  # what the gradient would be if sigma were a constant
    assert (ours - detached).abs().max() > 10 * (ours - reference).abs().max()


def test_sn_power_iteration_only_in_training_mode():
    layer = SpectralNormalization().wrap_weight_layer(nn.Linear(5, 7))
    u = layer.parametrizations.weight[0]._u
    before = u.clone()
    layer.eval()
    _ = layer.weight
    assert torch.equal(before, u)
    layer.train()
    _ = layer.weight
    assert not torch.equal(before, u)


def test_sn_u_is_in_the_state_dict_and_resumes():
    layer = _converged_sn_conv(seed=1)
    state = layer.state_dict()
    assert {"parametrizations.weight.0._u", "parametrizations.weight.0._v"} <= set(state)
    torch.manual_seed(99)
    fresh = SpectralNormalization().wrap_weight_layer(nn.Conv2d(8, 16, 3))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.eval().weight, layer.eval().weight)


# -- explicit matrices of circular convolutions --------------------------------------------------

def _circular_conv_matrix(weight: torch.Tensor, size) -> torch.Tensor:
    """The (out*H*W x in*H*W) matrix of the stride-1 circular convolution, built from basis inputs."""
    c_in, (height, width) = weight.shape[1], size
    basis = torch.eye(c_in * height * width, dtype=torch.float64).view(-1, c_in, height, width)
    padded = F.pad(basis, [weight.shape[-1] // 2] * 2 + [weight.shape[-2] // 2] * 2, mode="circular")
    return F.conv2d(padded, weight.double()).flatten(1).T


def _brute_force_zero_inf_norm(weight: torch.Tensor, size) -> torch.Tensor:
    """||W||_{0,inf}: the sup of max_i ||(Wx)_i|| over inputs with one non-zero channel of norm 1,
    i.e. the largest singular value of any (output channel i, input channel j) block."""
    matrix = _circular_conv_matrix(weight, size)
    c_out, c_in, pixels = weight.shape[0], weight.shape[1], size[0] * size[1]
    blocks = matrix.view(c_out, pixels, c_in, pixels).permute(0, 2, 1, 3)
    return torch.linalg.matrix_norm(blocks, ord=2).max()


@pytest.mark.parametrize("kernel,size", [(3, (6, 6)), (3, (5, 7)), (5, (7, 6)), (1, (4, 4)), (3, (2, 2)), (5, (3, 4))])
def test_san_constant_equals_brute_force(kernel, size):
    torch.manual_seed(kernel)
    weight = torch.randn(4, 3, kernel, kernel, dtype=torch.float64)
    torch.testing.assert_close(san_constant(weight, size), _brute_force_zero_inf_norm(weight, size),
                               rtol=1e-5, atol=0)


@pytest.mark.parametrize("kernel,size", [(3, (6, 6)), (3, (5, 7)), (5, (7, 6)), (3, (2, 2))])
def test_conv_operator_norm_equals_explicit_matrix(kernel, size):
    torch.manual_seed(kernel + 10)
    weight = torch.randn(4, 3, kernel, kernel, dtype=torch.float64)
    expected = _spectral_norm(_circular_conv_matrix(weight, size))
    torch.testing.assert_close(conv_operator_norm(weight, size), expected, rtol=1e-5, atol=0)


def test_explicit_matrix_is_the_layer():
    """The brute-force matrix is the conv layer SAN normalizes (circular padding, stride 1)."""
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular", bias=False).double()
    x = torch.randn(3 * 5 * 6, dtype=torch.float64)
    expected = conv(x.view(1, 3, 5, 6)).flatten()
    torch.testing.assert_close(_circular_conv_matrix(conv.weight.detach(), (5, 6)) @ x, expected)


def test_sn_estimate_underestimates_true_operator_norm():
    torch.manual_seed(0)
    weight = torch.randn(16, 16, 3, 3)
    assert sn_estimate(weight) <= conv_operator_norm(weight, (8, 8)) * (1 + 1e-5)


# -- sparsity aware normalization ----------------------------------------------------------------

def test_compensation_factor_is_harmonic_ratio():
    assert compensation_factor(4096, 0.25) == pytest.approx(1.185, abs=5e-4)  # the paper: about 1.2
    assert compensation_factor(4096, 1.0) == 1.0


@pytest.mark.parametrize("compensation", [None, 1.1])
def test_san_normalized_layer_has_constant_one_over_g(compensation):
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(compensation=compensation)
    layer = norm.wrap_weight_layer(nn.Conv2d(6, 5, 3, padding=1, padding_mode="circular"), input_size=(8, 8))
    g = compensation or 1.0
    assert san_constant(layer.weight, (8, 8)).item() == pytest.approx(1 / g, rel=1e-5)
    dense = norm.wrap_weight_layer(nn.Linear(20, 3))
    assert _spectral_norm(dense.weight).item() == pytest.approx(1 / g, rel=1e-5)


def test_san_constant_is_detached_in_backward():
    torch.manual_seed(0)
    layer = SparsityAwareNormalization().wrap_weight_layer(nn.Conv2d(3, 4, 3), input_size=(6, 6))
    original = layer.parametrizations.weight.original
    probe = torch.randn_like(original)
    (grad,) = torch.autograd.grad((layer.weight * probe).sum(), original)
    sigma = san_constant(original, (6, 6))
    torch.testing.assert_close(grad, probe / sigma)


def test_san_refreshes_every_k_updates_and_reuses_sigma_between():
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(update_every=3)
    critic = nn.Sequential(norm.wrap_weight_layer(nn.Conv2d(2, 3, 3), input_size=(5, 5)))
    layer = critic[0]
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(2)
    stale = layer.parametrizations.weight[0].sigma.clone()
    norm.after_discriminator_update(critic, step=0, rng=rng)
    norm.after_discriminator_update(critic, step=1, rng=rng)
    assert torch.equal(layer.parametrizations.weight[0].sigma, stale)
    norm.after_discriminator_update(critic, step=2, rng=rng)  # the 3rd update
    torch.testing.assert_close(layer.parametrizations.weight[0].sigma, 2 * stale)


def test_san_subset_takes_the_max_over_a_fraction_of_kernels():
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(subset_ratio=0.25)
    layer = norm.wrap_weight_layer(nn.Conv2d(8, 8, 3), input_size=(6, 6))
    scale = layer.parametrizations.weight[0]
    per_kernel = torch.stack([san_constant(k[None, None], (6, 6)) for k in layer.parametrizations.weight.original
                              .detach().flatten(0, 1)])
    assert scale.compensation == pytest.approx(compensation_factor(64, 0.25))
    assert scale.sigma.item() <= per_kernel.max().item() + 1e-6
    assert any(abs(scale.sigma.item() - v) < 1e-5 for v in per_kernel.tolist())  # it is one kernel's maximum


def test_san_uses_circular_padding_and_every_layer_input_size():
    _, discriminator = build_models(compose(["norm=san", "arch.width=0.125"]))
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.padding_mode == "circular" for c in convs)
    sizes = [c.parametrizations.weight[0].input_size for c in convs]
    assert sizes == [(32, 32), (32, 32), (16, 16), (16, 16), (8, 8), (8, 8), (4, 4)]
    for conv, size in zip(convs, sizes):
        assert san_constant(conv.weight, size).item() == pytest.approx(1.0, rel=1e-5)


# -- baselines of Miyato et al.'s Table 2 --------------------------------------------------------

@pytest.mark.parametrize("norm_class,expected",
                         [(BatchNormalization, nn.BatchNorm2d), (LayerNormalization, nn.GroupNorm)])
def test_feature_normalizations_follow_hidden_layers_with_gain_disabled(norm_class, expected):
    norm = norm_class(gain=False)
    layer = norm.feature_layer(6)
    assert isinstance(layer, expected) and not layer.weight.requires_grad and layer.bias.requires_grad
    x = torch.randn(4, 6, 5, 5) * 3 + 2
    y = layer(x)
    dims = (0, 2, 3) if expected is nn.BatchNorm2d else (1, 2, 3)
    reference = (x - x.mean(dims, keepdim=True)) / (x.var(dims, unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(y, reference, rtol=1e-4, atol=1e-4)
    assert norm_class(gain=True).feature_layer(6).weight.requires_grad


def test_table_2_feature_norms_skip_the_input_layer():
    _, discriminator = build_models(compose(["norm=bn"]))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules()) == 6


def test_weight_norm_without_gain_gives_unit_rows():
    torch.manual_seed(0)
    layer = WeightNormalization(gain=False).wrap_weight_layer(nn.Conv2d(3, 5, 3))
    original = layer.parametrizations.weight.original
    expected = original / original.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    torch.testing.assert_close(layer.weight, expected)
    gained = WeightNormalization(gain=True).wrap_weight_layer(nn.Conv2d(3, 5, 3))
    assert len(list(gained.parametrizations.weight.parameters())) == 2  # g and v


def test_gradient_penalty_matches_its_formula():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    penalty = GradientPenalty(weight=10.0).penalty(critic, real, fake, torch.Generator().manual_seed(4))
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(4))
    expected = 0.0
    for i in range(5):  # per-sample gradient, one at a time
        x_hat = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
        expected += 10.0 * (grad.norm() - 1) ** 2 / 5
    torch.testing.assert_close(penalty, expected)
    assert penalty.requires_grad  # it trains the critic (double backward)


def test_orthonormal_regularization_value_gradient_and_init():
    torch.manual_seed(0)
    norm = OrthonormalRegularization(strength=1e-2)
    conv = norm.wrap_weight_layer(nn.Conv2d(4, 6, 3))
    rows = conv.weight.detach().flatten(1)
    torch.testing.assert_close(rows @ rows.T, torch.eye(6), atol=1e-5, rtol=0)  # orthonormal init
    critic = nn.Sequential(conv, nn.Flatten(), nn.Linear(6, 2))
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(0.1 * torch.randn_like(p))
    penalty = norm.penalty(critic, None, None, None)
    expected = 0.0
    for w in (conv.weight.flatten(1), critic[2].weight):
        expected += (w @ w.T - torch.eye(w.shape[0])).pow(2).sum()  # both have fewer rows than columns
    torch.testing.assert_close(penalty, 1e-2 * expected)
    # the smaller Gram matrix has the gradient of ||W^T W - I||^2
    w = critic[2].weight.detach().clone().requires_grad_(True)
    (g_small,) = torch.autograd.grad((w @ w.T - torch.eye(2)).pow(2).sum(), w)
    (g_large,) = torch.autograd.grad((w.T @ w - torch.eye(6)).pow(2).sum(), w)
    torch.testing.assert_close(g_small, g_large)


def test_weight_clipping_bounds_every_parameter():
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 1))
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 1)
    inside = critic[0].weight.detach().abs() <= 0.01
    before = critic[0].weight.detach().clone()
    WeightClipping(clip=0.01).after_discriminator_update(critic, 0, None)
    assert all(p.abs().max() <= 0.01 for p in critic.parameters())
    assert torch.equal(critic[0].weight[inside], before[inside])


@pytest.mark.parametrize("name", ["sn", "san"])
def test_layer_scales_name_every_normalized_layer(name):
    cfg = compose([f"norm={name}", "arch.width=0.125"])
    norm = build_normalization(cfg)
    _, discriminator = build_models(cfg, norm=norm)
    scales = norm.layer_scales(discriminator)
    assert len(scales) == 8 and "classifier" in scales
    assert all(s.ndim == 0 and s > 0 for s in scales.values())
    assert all(parametrize.is_parametrized(discriminator.get_submodule(n), "weight") for n in scales)
