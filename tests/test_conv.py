"""Padded convolutions (sngan_repro.nn.conv): the circular ones with a transposed-convolution backward against
PyTorch's own F.pad + F.conv2d and nn.Conv2d.

gradcheck and gradgradcheck run with fast_mode=True: the analytical and finite-difference derivatives are compared
along random directions (u^T J v) of all inputs at once rather than element by element, so a wrong derivative of any
input still fails (but for a zero-probability draw), 50-100x faster (the double-backward check of the stride-2
convolution took about a minute on 2 CPU cores, now a second)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_repro.models.common import SameConv2d
from sngan_repro.nn import Conv2d, padded_conv2d
from sngan_repro.nn.conv import _spectral_bases, _spectral_circular_conv2d

# (size, kernel, stride, dilation, groups, (left, right, top, bottom)); all periodic unless marked
GEOMETRIES = [
    (8, 3, 1, 1, 1, (1, 1, 1, 1)),  # the standard CNN's 3x3 layers
    (8, 4, 2, 1, 1, (1, 1, 1, 1)),  # its 4x4 stride-2 layers
    (4, 3, 1, 1, 1, (1, 1, 1, 1)),  # the wrap spans most of the input
    (8, 5, 2, 1, 1, (1, 2, 1, 2)),  # Keras "same" for a stride-2 5x5 (iwgan)
    (6, 4, 1, 1, 1, (2, 1, 1, 2)),  # more before than after
    (8, 3, 1, 2, 2, (2, 2, 2, 2)),  # dilated, grouped
    (7, 4, 2, 1, 1, (1, 2, 1, 2)),  # not periodic (odd size, stride 2): plain F.pad
]
# the periodic, ungrouped, undilated ones, which the frequency-domain convolution takes
SPECTRAL_GEOMETRIES = [geometry for geometry in GEOMETRIES if geometry[3] == geometry[4] == 1 and
                       geometry[0] % geometry[2] == 0]


def _reference(x, weight, bias, padding, stride, dilation, groups):
    return F.conv2d(F.pad(x, padding, mode="circular"), weight, bias, stride, 0, dilation, groups)


@pytest.mark.parametrize("size, kernel, stride, dilation, groups, padding", GEOMETRIES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_circular_conv_and_its_gradients_equal_f_pad_then_conv(size, kernel, stride, dilation, groups, padding,
                                                                channels_last):
    torch.manual_seed(0)
    x = torch.randn(2, 4, size, size, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    weight = torch.randn(6, 4 // groups, kernel, kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    arguments = (padding, stride, dilation, groups)
    ours = padded_conv2d(x, weight, bias, padding, "circular", *arguments[1:])
    expected = _reference(x, weight, bias, *arguments)
    torch.testing.assert_close(ours, expected)
    upstream = torch.randn_like(expected)
    for got, want in zip(torch.autograd.grad(ours, (x, weight, bias), upstream),
                         torch.autograd.grad(expected, (x, weight, bias), upstream)):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda *t: padded_conv2d(*t, padding, "circular", *arguments[1:]),
                                    (x, weight, bias), fast_mode=True)
    periodic = size % stride == 0
    assert ("Periodic" in type(ours.grad_fn).__name__) == periodic


@pytest.mark.parametrize("size, kernel, stride, dilation, groups, padding", SPECTRAL_GEOMETRIES)
@pytest.mark.parametrize("width_offset", [0, 2])  # square, and a wider than high input (its half spectrum)
def test_spectral_circular_conv_and_its_gradients_equal_f_pad_then_conv(size, kernel, stride, dilation, groups,
                                                                        padding, width_offset):
    torch.manual_seed(0)
    x = torch.randn(2, 2, size, size + width_offset * stride, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, kernel, kernel, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, dtype=torch.float64, requires_grad=True)

    def spectral(*tensors):
        return _spectral_circular_conv2d(*tensors, (padding[2], padding[0]), stride)

    ours, expected = spectral(x, weight, bias), _reference(x, weight, bias, padding, stride, 1, 1)
    torch.testing.assert_close(ours, expected)
    upstream = torch.randn_like(expected)
    for got, want in zip(torch.autograd.grad(ours, (x, weight, bias), upstream),
                         torch.autograd.grad(expected, (x, weight, bias), upstream)):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(spectral, (x, weight, bias), fast_mode=True)
    if (size, kernel, stride, width_offset) == (8, 4, 2, 2):  # the slowest check, on one geometry
        assert torch.autograd.gradgradcheck(lambda *t: spectral(*t).tanh(), (x, weight, bias), fast_mode=True)


@pytest.mark.parametrize("size, kernel, stride, spectral", [(4, 3, 1, True), (8, 3, 1, True), (8, 4, 2, False),
                                                            (16, 3, 1, False)])
def test_wide_layers_on_small_maps_take_the_spectral_path_in_float32_and_bfloat16(size, kernel, stride, spectral):
    """The standard CNN's last 3 x 3 layers (256 channels at 4 x 4 and 8 x 8) need under a third of the direct
    convolution's multiply-adds in the frequency domain; its stride-2 layers and larger maps do not."""
    torch.manual_seed(0)
    x = torch.randn(4, 256, size, size, requires_grad=True)
    conv = Conv2d(256, 256, kernel, stride, padding=1, padding_mode="circular")
    out = conv(x)
    assert ("Periodic" not in type(out.grad_fn).__name__) == spectral
    expected = _reference(x.double(), conv.weight.double(), conv.bias.double(), (1, 1, 1, 1), stride, 1, 1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())
    upstream = torch.randn_like(out)
    for got, want in zip(torch.autograd.grad(out, (x, conv.weight, conv.bias), upstream),
                         torch.autograd.grad(expected, (x, conv.weight, conv.bias), upstream.double())):
        torch.testing.assert_close(got, want.float(), rtol=1e-4, atol=1e-4 * want.abs().max().item())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = conv(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.double(), expected, rtol=5e-2, atol=2e-2 * expected.abs().max().item())


def test_a_spectral_layer_first_run_under_inference_mode_still_trains():
    """Its DFT matrices are cached per geometry: built under inference mode (an evaluation), they must still be
    usable by autograd afterwards."""
    conv = Conv2d(256, 256, 3, 1, padding=1, padding_mode="circular")
    x = torch.randn(2, 256, 4, 4, requires_grad=True)
    _spectral_bases.cache_clear()
    with torch.inference_mode():
        evaluated = conv(torch.randn(2, 256, 4, 4))
    assert "Periodic" not in type(conv(x).grad_fn).__name__
    conv(x).square().sum().backward()
    expected = _reference(x, conv.weight, conv.bias, (1, 1, 1, 1), 1, 1, 1)
    assert torch.isfinite(evaluated).all() and x.grad is not None
    torch.testing.assert_close(torch.autograd.grad(expected.square().sum(), x)[0], x.grad, rtol=1e-4, atol=1e-4)


def test_only_the_gradients_asked_for_are_computed():
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    weight = torch.randn(5, 3, 3, 3)
    (grad,) = torch.autograd.grad(padded_conv2d(x, weight, None, (1, 1, 1, 1), "circular").sum(), x)
    expected = torch.autograd.grad(_reference(x, weight, None, (1, 1, 1, 1), 1, 1, 1).sum(), x)[0]
    torch.testing.assert_close(grad, expected)


def test_its_backward_is_differentiable_for_gradient_penalties():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda *t: padded_conv2d(*t, (1, 1, 1, 1), "circular", 2).tanh(),
                                        (x, weight, bias), fast_mode=True)


def test_under_autocast_the_gradients_come_back_in_the_parameters_dtypes():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 16, 16, requires_grad=True)
    conv = Conv2d(8, 8, 4, stride=2, padding=1, padding_mode="circular")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.bfloat16
    out.float().square().sum().backward()
    grads = [x.grad, conv.weight.grad, conv.bias.grad]
    assert [g.dtype for g in grads] == [torch.float32] * 3
    x.grad, conv.weight.grad, conv.bias.grad = None, None, None
    conv(x).square().sum().backward()
    for low, full in zip(grads, [x.grad, conv.weight.grad, conv.bias.grad]):
        torch.testing.assert_close(low, full, rtol=5e-2, atol=5e-2 * full.abs().max().item())


def test_conv2d_is_nn_conv2d_with_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    reference = nn.Conv2d(3, 4, 4, stride=2, padding=1, padding_mode="circular").double()
    ours = Conv2d(3, 4, 4, stride=2, padding=1, padding_mode="circular").double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    outputs = [layer(x) for layer in (reference, ours)]
    torch.testing.assert_close(outputs[1], outputs[0])
    grads = [torch.autograd.grad(out.square().sum(), [x, layer.weight, layer.bias])
             for out, layer in zip(outputs, (reference, ours))]
    for expected, got in zip(*grads):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("mode", ["zeros", "circular"])
def test_same_conv_pads_as_keras_in_its_mode(mode):
    conv = SameConv2d(2, 3, 5, 2, 7, padding_mode=mode).double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    expected = F.conv2d(F.pad(x, conv.same_pad, mode="circular" if mode == "circular" else "constant"), conv.weight,
                        conv.bias, 2)
    torch.testing.assert_close(conv(x), expected)
