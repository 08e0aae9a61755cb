"""Circular padding with a one-pass backward (sngan_repro.nn.conv) against PyTorch's own F.pad and nn.Conv2d."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sngan_repro.models.common import SameConv2d
from sngan_repro.nn import Conv2d, circular_pad


@pytest.mark.parametrize("padding", [(1, 1, 1, 1), (1, 2, 0, 3), (0, 0, 2, 1), (3, 0, 2, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_circular_pad_and_its_gradient_equal_f_pad(padding, channels_last):
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    upstream = torch.randn(F.pad(x, padding, mode="circular").shape, dtype=torch.float64)
    expected = F.pad(x, padding, mode="circular")
    (expected_grad,) = torch.autograd.grad(expected, x, upstream)
    ours = circular_pad(x, padding)
    (grad,) = torch.autograd.grad(ours, x, upstream)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad, expected_grad)
    assert torch.autograd.gradcheck(lambda t: circular_pad(t, padding), (x,))


def test_conv2d_is_nn_conv2d_with_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    reference = nn.Conv2d(3, 4, 4, stride=2, padding=1, padding_mode="circular").double()
    ours = Conv2d(3, 4, 4, stride=2, padding=1, padding_mode="circular").double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    outputs = [layer(x) for layer in (reference, ours)]
    torch.testing.assert_close(outputs[1], outputs[0])
    grads = [torch.autograd.grad(out.square().sum(), [x, layer.weight])
             for out, layer in zip(outputs, (reference, ours))]
    for expected, got in zip(*grads):
        torch.testing.assert_close(got, expected)


def test_same_conv_pads_circularly_through_circular_pad():
    conv = SameConv2d(2, 3, 5, 2, 7, padding_mode="circular").double()
    x = torch.randn(1, 2, 7, 7, dtype=torch.float64)
    expected = F.conv2d(F.pad(x, conv.same_pad, mode="circular"), conv.weight, conv.bias, 2)
    torch.testing.assert_close(conv(x), expected)
