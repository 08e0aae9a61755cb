"""Every discriminator normalization against an independent computation: SVDs, explicit
convolution matrices, and the papers' formulas."""

import copy
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from sngan_repro import build_models, compose
from sngan_repro.nn import normalizing_constants, spectral_norm
from sngan_repro.nn.spectra import conv_operator_norm, san_constant, sn_estimate
from sngan_repro.noise import RankShare
from sngan_repro.normalizations import (
    BatchNormalization,
    GradientPenalty,
    LayerNormalization,
    OrthonormalRegularization,
    SparsityAwareNormalization,
    SpectralNormalization,
    WeightClipping,
    WeightNormalization,
    build_normalization,
    compensation_factor,
)
from sngan_repro.normalizations.sparsity_aware import SparsityAwareProjection, SparsityAwareScale


def _spectral_norm(matrix: torch.Tensor) -> torch.Tensor:
    return torch.linalg.matrix_norm(matrix.detach().double(), ord=2)


def _numpy_sigma(weight: torch.Tensor, dim: int = 0) -> float:
    """The top singular value of the weight reshaped to (output units along ``dim``, everything else), by LAPACK's
    SVD through numpy in float64: independent of torch's linear algebra."""
    array = np.moveaxis(weight.detach().double().numpy(), dim, 0)
    return float(np.linalg.svd(array.reshape(array.shape[0], -1), compute_uv=False)[0])


# -- spectral normalization ---------------------------------------------------------------------

def _converged_sn_conv(seed=0):
    torch.manual_seed(seed)
    layer = SpectralNormalization().wrap_weight_layer(nn.Conv2d(8, 16, 3))
    for _ in range(300):  # one power step per training-mode access
        _ = layer.weight
    return layer


def _sigma_of(layer) -> torch.Tensor:
    [(_, sigma)] = normalizing_constants(layer).items()
    return sigma


def test_sn_normalized_weight_has_unit_sigma():
    layer = _converged_sn_conv()
    exact = _spectral_norm(layer.parametrizations.weight.original.flatten(1))
    assert torch.allclose(_sigma_of(layer).double(), exact, rtol=1e-4)  # the sigma it divided by, as logged
    assert abs(torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item() - 1) < 1e-3


@pytest.mark.parametrize("shape", [(16, 8, 3, 3), (7, 20), (20, 7), (3, 5, 4, 4)])
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_sn_estimate_is_the_top_singular_value_of_the_reshaped_kernel(shape, dtype, rtol):
    """What the diagnostics log as SN's target: sigma of the kernel reshaped to (out, in*kh*kw), against numpy's SVD."""
    torch.manual_seed(len(shape))
    weight = torch.randn(shape, dtype=dtype)
    estimate = sn_estimate(weight)
    assert estimate.dtype == dtype and estimate.shape == ()
    assert estimate.item() == pytest.approx(_numpy_sigma(weight), rel=rtol)


# Our SpectralNorm against PyTorch's own torch.nn.utils.parametrizations.spectral_norm. Both keep u and v in buffers,
# run n power steps per training-mode forward and none in eval mode, divide by sigma = u^T W v with u, v constants for
# autograd, and start with 15 steps from a random draw. One difference in the algorithm, kept on purpose: the order of
# the two half steps.
#   ours (Miyato et al.'s Algorithm 1):  v <- N(W^T u), then u <- N(W v)   (a step starts from u)
#   PyTorch (parametrizations.py):       u <- N(W v),   then v <- N(W^T u) (a step starts from v)
# So after step k from the same u_0, ours holds (u_k, v_k) and divides by u_k^T W v_k = ||W v_k||, while PyTorch's
# u is also u_k but its v is already v_{k+1} = N(W^T u_k), and it divides by ||W^T u_k||, half a step further along
# (>= ours by Cauchy-Schwarz, <= sigma(W)). PyTorch's steps on W^T are ours on W with u and v swapped: that is the
# exact comparison (for a Linear, PyTorch's dim=1 takes W^T; a conv's (out, in*kh*kw) matrix is taken by a Linear
# holding its transpose, since no dim of a 4-D kernel gives it).

def _sn_pair(plain: nn.Module):
    """(our spectrally normalized ``plain``, PyTorch's spectral_norm of our reshaped matrix's transpose), both in
    float64, PyTorch's buffers set to ours swapped (its v = our u, its u = our v) and its W^T to our stored W."""
    ours = spectral_norm(plain.double())
    matrix = ours.parametrizations.weight.original.detach().flatten(1)
    holder = nn.Linear(*matrix.shape, bias=False).double()  # weight (in*kh*kw, out) = W^T
    with torch.no_grad():
        holder.weight.copy_(matrix.T)
    reference = torch_spectral_norm(holder)
    ours_sn, torch_sn = ours.parametrizations.weight[0], reference.parametrizations.weight[0]
    with torch.no_grad():
        _restart(ours_sn)
        torch_sn._v.copy_(ours_sn.u)  # the u every step of ours starts from
        torch_sn._u.copy_(ours_sn.v)
    return ours, reference


def _restart(parametrization) -> None:
    """New random unit u and v: far from the top singular vectors (registration's 15 steps nearly converge them), so
    that a step skipped, added or taken in another order changes sigma by far more than the tolerances."""
    for vector in (parametrization.u, parametrization.v):
        vector.copy_(F.normalize(torch.randn_like(vector), dim=0))


@pytest.mark.parametrize("plain", [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(3, 4, 3)], ids=["linear", "conv2d"])
def test_sn_steps_as_pytorchs_spectral_norm(plain):
    torch.manual_seed(0)
    ours, reference = _sn_pair(plain())
    ours_sn, torch_sn = ours.parametrizations.weight[0], reference.parametrizations.weight[0]
    stored, torch_stored = ours.parametrizations.weight.original, reference.parametrizations.weight.original
    probe = torch.randn_like(stored)
    sigmas = []
    for _ in range(6):  # training mode: one power step per access, the weights moving in between as in training
        weight, torch_weight = ours.weight, reference.weight.T.reshape(stored.shape)
        torch.testing.assert_close(weight, torch_weight, rtol=1e-12, atol=0)
        torch.testing.assert_close(ours_sn.u, torch_sn._v, rtol=0, atol=1e-14)
        torch.testing.assert_close(ours_sn.v, torch_sn._u, rtol=0, atol=1e-14)
        torch.testing.assert_close(ours_sn.sigma, torch.dot(torch_sn._u, torch_stored.detach() @ torch_sn._v),
                                   rtol=1e-13, atol=0)
        (grad,) = torch.autograd.grad((weight * probe).sum(), stored)  # the gradient through sigma, too
        (torch_grad,) = torch.autograd.grad((torch_weight * probe).sum(), torch_stored)
        torch.testing.assert_close(grad, torch_grad.T.reshape(grad.shape), rtol=1e-12, atol=1e-15)
        sigmas.append(ours_sn.sigma.item() / _numpy_sigma(stored))
        with torch.no_grad():
            delta = 0.02 * torch.randn_like(stored)
            stored.add_(delta)
            torch_stored.add_(delta.flatten(1).T)
    # the comparison has power: the estimates were far from converged, so a step skipped or added would show
    assert sigmas[0] < 0.95 and max(sigmas) < 1 - 1e-4, sigmas
    vectors = ours_sn.u.clone(), ours_sn.v.clone()
    ours.eval(), reference.eval()
    for _ in range(3):  # eval mode: no power step in either, the same sigma from the same u, v
        torch.testing.assert_close(ours.weight, reference.weight.T.reshape(stored.shape), rtol=1e-12, atol=0)
    assert torch.equal(ours_sn.u, vectors[0]) and torch.equal(ours_sn.v, vectors[1])
    torch.testing.assert_close(torch_sn._v, vectors[0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("plain", [lambda: nn.Linear(7, 5), lambda: nn.Conv2d(3, 4, 3)], ids=["linear", "conv2d"])
def test_sn_is_half_a_power_step_behind_pytorchs_on_the_same_matrix(plain):
    """The difference above, measured: PyTorch's spectral_norm of the same layer (dim 0), its v set to the half step
    N(W^T u_0) that ours takes first, keeps our u after every step, its v one half step ahead, and divides by
    ||W^T u_k|| where ours divides by u_k^T W v_k; both below the SVD's sigma."""
    torch.manual_seed(1)
    layer = plain().double()
    reference = torch_spectral_norm(copy.deepcopy(layer))
    ours = spectral_norm(layer)
    ours_sn, torch_sn = ours.parametrizations.weight[0], reference.parametrizations.weight[0]
    matrix = ours.parametrizations.weight.original.detach().flatten(1)
    with torch.no_grad():
        _restart(ours_sn)
        torch_sn._u.copy_(ours_sn.u)
        torch_sn._v.copy_(F.normalize(matrix.T @ ours_sn.u, dim=0))
    exact = _numpy_sigma(matrix)
    for _ in range(4):
        weight, torch_weight = ours.weight, reference.weight
        torch.testing.assert_close(torch_sn._u, ours_sn.u, rtol=0, atol=1e-14)
        torch.testing.assert_close(torch_sn._v, F.normalize(matrix.T @ ours_sn.u, dim=0), rtol=0, atol=1e-14)
        ours_sigma, torch_sigma = ours_sn.sigma.item(), (matrix / torch_weight.detach().flatten(1)).mean().item()
        assert ours_sigma == pytest.approx((ours_sn.u @ matrix @ ours_sn.v).item(), rel=1e-13)
        assert torch_sigma == pytest.approx(torch.linalg.vector_norm(matrix.T @ ours_sn.u).item(), rel=1e-13)
        assert ours_sigma < torch_sigma <= exact * (1 + 1e-14)
        torch.testing.assert_close(torch_weight * torch_sigma, weight * ours_sigma, rtol=1e-13, atol=0)


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


def test_sn_of_a_transposed_convolution_normalizes_its_output_units():
    torch.manual_seed(0)
    layer = SpectralNormalization().wrap_weight_layer(nn.ConvTranspose2d(6, 4, 4, 2, 1))
    for _ in range(300):
        _ = layer.weight
    by_output_unit = layer.weight.detach().transpose(0, 1).flatten(1)  # (out, in*kh*kw), as Miyato et al. reshape
    assert abs(torch.linalg.matrix_norm(by_output_unit, ord=2).item() - 1) < 1e-3


def test_sn_power_iteration_only_in_training_mode():
    layer = SpectralNormalization().wrap_weight_layer(nn.Linear(5, 7))
    u = layer.parametrizations.weight[0].u
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
    assert {f"parametrizations.weight.0.{name}" for name in ("u", "v", "sigma")} <= set(state)
    torch.manual_seed(99)
    fresh = SpectralNormalization().wrap_weight_layer(nn.Conv2d(8, 16, 3))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.eval().weight, layer.eval().weight)


def test_normalizations_leave_the_global_random_stream_alone():
    """Kligvasser & Michaeli (App. E) compare methods "initialized with the same draw of random weights": with one
    seed, norm=none, sn and san build critics from the same stored weights (SAN's projection then rescales them)."""
    def stored(norm):
        torch.manual_seed(0)
        reparametrized = ["norm.mode=reparametrization"] if norm == "san" else []
        critic = build_models(compose([f"norm={norm}", *reparametrized, "arch.width=0.125"]))[1]
        return [(m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight)
                for m in critic.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    plain = stored("none")
    for norm in ("sn", "san"):
        assert all(torch.equal(a, b) for a, b in zip(plain, stored(norm))), norm


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


@pytest.mark.parametrize("largest", [0, -1])
def test_san_constant_over_many_cache_blocks_finds_the_largest_kernel_anywhere(largest):
    """1200 kernels at 32 x 32 span three CPU blocks; checked against each kernel's own 2-D FFT."""
    torch.manual_seed(3)
    weight = torch.randn(40, 30, 4, 4)
    weight[largest, largest] *= 10
    expected = torch.fft.fft2(weight.double(), s=(32, 32)).abs().amax()
    torch.testing.assert_close(san_constant(weight, (32, 32)).double(), expected, rtol=1e-5, atol=0)


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

def _harmonic_ratio(num_kernels: int, kept: int) -> float:
    """Eq. 20 with exact rational arithmetic: H_mn / H_k."""
    def harmonic(n: int) -> Fraction:
        return sum(Fraction(1, j) for j in range(1, n + 1))

    return float(harmonic(num_kernels) / harmonic(kept))


def test_compensation_factor_is_harmonic_ratio():
    g = compensation_factor(4096, 0.25)
    assert g == pytest.approx(_harmonic_ratio(4096, 1024), rel=1e-12)
    assert g == pytest.approx(1.2, abs=0.02)  # App. C: "g ~ 1.2 for r = 25 %" with m n = 64^2
    assert compensation_factor(4096, 1.0) == 1.0


@pytest.mark.parametrize("mode", ["projection", "reparametrization"])
@pytest.mark.parametrize("compensation", [None, 1.1])
def test_san_normalized_layer_has_constant_one_over_g(compensation, mode):
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(mode=mode, compensation=compensation, dense="svd")
    layer = norm.wrap_weight_layer(nn.Conv2d(6, 5, 3, padding=1, padding_mode="circular"), input_size=(8, 8))
    g = compensation or 1.0
    assert _brute_force_zero_inf_norm(layer.weight.detach(), (8, 8)).item() == pytest.approx(1 / g, rel=1e-5)
    dense = norm.wrap_weight_layer(nn.Linear(20, 3))
    assert _spectral_norm(dense.weight).item() == pytest.approx(1.0, rel=1e-5)  # g is about the convolutions only


def test_san_projection_normalizes_the_stored_weight_and_registers_no_parametrization():
    torch.manual_seed(0)
    layer = SparsityAwareNormalization().wrap_weight_layer(nn.Conv2d(3, 4, 3), input_size=(6, 6))
    assert not parametrize.is_parametrized(layer) and isinstance(layer.weight, nn.Parameter)
    torch.testing.assert_close(_brute_force_zero_inf_norm(layer.weight.detach(), (6, 6)),
                               torch.tensor(1.0, dtype=torch.float64), rtol=1e-5, atol=0)


def test_san_dense_layers_are_spectrally_normalized_with_the_gradient_through_sigma():
    """Sec. 3: "the top singular value of the weight matrix, as in (Miyato et al. 2018)": SN by default."""
    torch.manual_seed(0)
    for mode in ("projection", "reparametrization"):
        dense = SparsityAwareNormalization(mode=mode).wrap_weight_layer(nn.Linear(20, 3))
        assert [type(p).__name__ for p in dense.parametrizations.weight] == ["SpectralNorm"]


def test_san_constant_is_detached_in_backward():
    torch.manual_seed(0)
    layer = SparsityAwareNormalization(mode="reparametrization").wrap_weight_layer(nn.Conv2d(3, 4, 3),
                                                                                  input_size=(6, 6))
    original = layer.parametrizations.weight.original
    probe = torch.randn_like(original)
    (grad,) = torch.autograd.grad((layer.weight * probe).sum(), original)
    sigma = _brute_force_zero_inf_norm(original.detach(), (6, 6)).float()
    torch.testing.assert_close(grad, probe / sigma)


def test_san_reparametrization_refreshes_every_k_updates_from_the_tensor_it_receives():
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(mode="reparametrization", update_every=3)
    critic = nn.Sequential(norm.wrap_weight_layer(nn.Conv2d(2, 3, 3), input_size=(5, 5)))
    layer = critic[0]
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(2)
    applied = layer.weight.detach()
    norm.after_discriminator_update(critic, step=0, rng=rng)
    norm.after_discriminator_update(critic, step=1, rng=rng)
    torch.testing.assert_close(layer.weight, applied)  # sigma reused between refreshes: the weight doubled
    norm.after_discriminator_update(critic, step=2, rng=rng)  # the 3rd update: the next forward recomputes sigma
    assert san_constant(layer.weight, (5, 5)).item() == pytest.approx(1.0, rel=1e-5)
    torch.testing.assert_close(layer.weight.detach(), applied / 2)


def test_san_pending_refresh_survives_a_state_dict_round_trip():
    """A refresh requested but not yet done (a checkpoint between a critic update and the next forward) resumes."""
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(mode="reparametrization", subset_ratio=0.5)
    critic = nn.Sequential(norm.wrap_weight_layer(nn.Conv2d(4, 4, 3), input_size=(6, 6)))
    with torch.no_grad():
        critic[0].parametrizations.weight.original.mul_(2)
    norm.after_discriminator_update(critic, step=0, rng=torch.Generator().manual_seed(5))
    state = {key: value.clone() if isinstance(value, torch.Tensor) else value
             for key, value in critic.state_dict().items()}
    expected = critic[0].weight.detach()  # this forward performs the pending refresh

    torch.manual_seed(1)
    fresh = nn.Sequential(SparsityAwareNormalization(mode="reparametrization", subset_ratio=0.5)
                          .wrap_weight_layer(nn.Conv2d(4, 4, 3), input_size=(6, 6)))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh[0].weight, expected, rtol=0, atol=0)


def test_san_projection_every_k_updates():
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(update_every=2, compensation=1.1)
    critic = nn.Sequential(norm.wrap_weight_layer(nn.Conv2d(2, 3, 3), input_size=(5, 5)))
    rng = torch.Generator().manual_seed(0)
    with torch.no_grad():
        critic[0].weight.mul_(3)
    norm.after_discriminator_update(critic, step=0, rng=rng)
    assert san_constant(critic[0].weight, (5, 5)).item() == pytest.approx(3 / 1.1, rel=1e-5)  # not yet
    norm.after_discriminator_update(critic, step=1, rng=rng)
    assert san_constant(critic[0].weight, (5, 5)).item() == pytest.approx(1 / 1.1, rel=1e-5)


def test_san_projection_is_algorithm_1():
    """Algorithm 1 by hand on a tiny critic: normalize W <- W / (g sigma) with sigma from the explicit operator
    matrices, then one Adam step on the normalized weight; our critic, trained through the normalization's hook,
    holds the same weights after every update."""
    torch.manual_seed(0)
    g, size, lr = 1.1, (5, 5), 1e-2
    norm = SparsityAwareNormalization(compensation=g, dense="svd")
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", bias=False)
    initial = conv.weight.detach().clone()
    critic = nn.Sequential(norm.wrap_weight_layer(conv, input_size=size), nn.ReLU(), nn.Flatten(),
                           norm.wrap_weight_layer(nn.Linear(3 * 25, 1, bias=False)))
    dense_initial = critic[3].weight.detach().clone() * _spectral_norm(critic[3].weight).float()  # undo its division
    ours = torch.optim.Adam(critic.parameters(), lr=lr)

    by_hand = [initial.clone().requires_grad_(True), dense_initial.clone().requires_grad_(True)]
    reference = torch.optim.Adam(by_hand, lr=lr)
    batches = [torch.randn(4, 2, *size) for _ in range(4)]
    for step, x in enumerate(batches):
        with torch.no_grad():  # steps 2-3 of Algorithm 1, before every update (update_every = 1)
            by_hand[0].div_(g * _brute_force_zero_inf_norm(by_hand[0].detach(), size).float())
            by_hand[1].div_(_spectral_norm(by_hand[1]).float())
        if step == 0:
            torch.testing.assert_close(critic[0].weight, by_hand[0])
        loss_hand = F.conv2d(F.pad(x, [1, 1, 1, 1], mode="circular"), by_hand[0]).relu().flatten(1) @ by_hand[1].T
        reference.zero_grad()
        loss_hand.square().mean().backward()
        reference.step()
        ours.zero_grad()
        critic(x).square().mean().backward()
        ours.step()
        norm.after_discriminator_update(critic, step, torch.Generator().manual_seed(step))
        with torch.no_grad():  # compare after the next normalization, which both apply
            expected = by_hand[0] / (g * _brute_force_zero_inf_norm(by_hand[0].detach(), size).float())
        torch.testing.assert_close(critic[0].weight, expected, rtol=1e-4, atol=1e-6)


def test_san_subset_takes_the_max_over_a_fraction_of_kernels():
    torch.manual_seed(0)
    norm = SparsityAwareNormalization(mode="reparametrization", subset_ratio=0.25)
    layer = norm.wrap_weight_layer(nn.Conv2d(8, 8, 3), input_size=(6, 6))
    [scale] = [m for m in layer.modules() if isinstance(m, SparsityAwareScale)]
    per_kernel = torch.stack([_brute_force_zero_inf_norm(k[None, None], (6, 6)) for k in
                              layer.parametrizations.weight.original.detach().flatten(0, 1)])
    assert scale.compensation == pytest.approx(_harmonic_ratio(64, 16), rel=1e-12)
    assert scale.sigma.item() <= per_kernel.max().item() + 1e-6
    assert any(abs(scale.sigma.item() - v) < 1e-5 for v in per_kernel.tolist())  # it is one kernel's maximum


@pytest.mark.parametrize("mode", ["projection", "reparametrization"])
def test_san_uses_circular_padding_and_every_layer_input_size(mode):
    _, discriminator = build_models(compose(["norm=san", f"norm.mode={mode}", "arch.width=0.125"]))
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.padding_mode == "circular" for c in convs)
    constants = [next(m for m in c.modules() if isinstance(m, (SparsityAwareScale, SparsityAwareProjection)))
                 for c in convs]
    sizes = [constant.input_size for constant in constants]
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
    """Every hidden conv of the standard CNN but the first (which sees the image) is followed by the norm."""
    _, discriminator = build_models(compose(["norm=bn"]))
    layers = list(discriminator.features)
    following = [type(layers[i + 1]) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert following == [nn.LeakyReLU] + [nn.BatchNorm2d] * 6


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
    noise = RankShare(torch.Generator().manual_seed(4), rank=0, world_size=1)
    penalty = GradientPenalty(weight=10.0).penalty(critic, real, fake, noise)
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
def test_logged_scales_are_the_constants_each_layer_divides_by(name):
    cfg = compose([f"norm={name}", "arch.width=0.125"])
    _, discriminator = build_models(cfg, norm=build_normalization(cfg))
    scales = normalizing_constants(discriminator)
    assert len(scales) == 8 and "classifier" in scales
    for layer_name, sigma in scales.items():
        layer = discriminator.get_submodule(layer_name)
        stored = layer.parametrizations.weight.original if parametrize.is_parametrized(layer, "weight") else None
        if stored is not None and not isinstance(layer, nn.Conv2d) or name == "sn":
            # a spectrally normalized layer: weight = stored / sigma, sigma its top singular value
            torch.testing.assert_close(layer.weight, stored / sigma)
            # u^T W v with unit u, v never exceeds the top singular value; 17 power steps from init come close
            assert 0.9 * sn_estimate(stored).item() < sigma.item() <= sn_estimate(stored).item() * (1 + 1e-6)
        else:  # SAN's projection: the stored weight was divided by the sigma it had
            assert san_constant(layer.weight, next(m.input_size for m in layer.modules()
                                                   if isinstance(m, SparsityAwareProjection))).item() == \
                pytest.approx(1.0, rel=1e-5)
