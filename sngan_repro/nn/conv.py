"""Convolutions with circular padding whose backward works at the input's size.

SAN's critic pads circularly (Kligvasser & Michaeli, Sec. 3: Lemma 1 holds for circular convolutions). Done as
``F.conv2d(F.pad(x, mode="circular"))``, autograd computes the input's gradient at the padded size (a third more
positions at 16 x 16, more than twice as many at 4 x 4) and then adds each padded strip back through slice copies.

When the layer maps an N-periodic input to an (N / stride)-periodic output (every circular layer of the
architectures here), the input's gradient is itself periodic: the transposed convolution of the output gradient,
circularly padded by a row or two, cropped to exactly N. ``padded_conv2d`` computes it that way: on CPU this took
SAN's critic update from 1.22x to 1.18x the zero-padded one (the rest is the padding copy and the convolutions'
larger inputs).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# nn.Conv2d's padding_mode names -> F.pad's
PAD_MODES = {"zeros": "constant", "circular": "circular", "reflect": "reflect", "replicate": "replicate"}


def _wrap_rows(size: int, before: int, after: int, kernel: int, stride: int, dilation: int) -> int | None:
    """Rows of circular padding of the output gradient that make its transposed convolution the input gradient
    along one dimension, or None when the layer is not periodic there (the output's period times the stride is
    not the input's, e.g. a stride-2 layer on an odd size).

    The input position i receives, for each tap t, the output o with o * stride + t * dilation - before = i
    (mod size). In the gradient padded by q rows on each side, that o sits at o + q, which must lie inside it for
    every i and t: q >= (after + stride - 1) / stride for i = 0 and the last tap, q >= before / stride for the
    last i and the first tap. Each (i, t) meets at most one o, so nothing is counted twice."""
    span = dilation * (kernel - 1) + 1
    if before + after != span - stride or size % stride:
        return None
    rows = max(math.ceil((after + stride - 1) / stride), math.ceil(before / stride))
    return rows if rows <= size // stride else None


class _PeriodicCircularConv2d(torch.autograd.Function):
    """A circular convolution of ``padded`` = F.pad(x, circular) whose gradient goes to ``x`` directly, as a
    circular transposed convolution (see the module doc). ``padded`` comes from autograd's own pad, so that the
    weight's gradient, computed from it, stays differentiable in x (gradient penalties)."""

    @staticmethod
    def forward(ctx, x, padded, weight, bias, padding, stride, dilation, groups, wrap_rows):
        ctx.save_for_backward(padded, weight)
        ctx.geometry = padding, stride, dilation, groups, wrap_rows, x.shape[-2:], x.dtype, bias is not None
        return F.conv2d(padded, weight, bias, stride, 0, dilation, groups)

    @staticmethod
    def backward(ctx, grad):
        padded, weight = ctx.saved_tensors
        (left, right, top, bottom), stride, dilation, groups, (rows, cols), size, input_dtype, has_bias = ctx.geometry
        grad_input = grad_weight = grad_bias = None
        # under autocast the forward ran in a lower precision: the gradient arrives in it, the weight does not
        if ctx.needs_input_grad[0]:
            wrapped = F.pad(grad, (cols, cols, rows, rows), mode="circular")
            crop = (min(top, bottom), min(left, right))
            full = F.conv_transpose2d(wrapped, weight.to(grad.dtype), None, stride,
                                      (rows * stride[0] + crop[0], cols * stride[1] + crop[1]), 0, groups, dilation)
            grad_input = full[..., top - crop[0]:top - crop[0] + size[0], left - crop[1]:left - crop[1] + size[1]]
            grad_input = grad_input.to(input_dtype)
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad, padded.to(grad.dtype), weight.to(grad.dtype), [weight.shape[0]] if has_bias else None, stride,
                (0, 0), dilation, False, (0, 0), groups, [False, ctx.needs_input_grad[2], ctx.needs_input_grad[3]])
            grad_weight = None if grad_weight is None else grad_weight.to(weight.dtype)
            grad_bias = None if grad_bias is None else grad_bias.to(weight.dtype)
        # padded's own gradient is None: the input's is already complete in grad_input
        return grad_input, None, grad_weight, grad_bias, None, None, None, None, None


def padded_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding, mode: str = "zeros",
                  stride=1, dilation=1, groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` of ``x`` padded by ``padding`` = (left, right, top, bottom) in nn.Conv2d's ``mode`` (zeros,
    circular, reflect, replicate). Circular padding of a periodic layer goes through ``_PeriodicCircularConv2d``."""
    stride, dilation, padding = nn.modules.utils._pair(stride), nn.modules.utils._pair(dilation), tuple(padding)
    if not any(padding):
        return F.conv2d(x, weight, bias, stride, 0, dilation, groups)
    if mode == "circular":
        left, right, top, bottom = padding
        wrap = (_wrap_rows(x.shape[-2], top, bottom, weight.shape[-2], stride[0], dilation[0]),
                _wrap_rows(x.shape[-1], left, right, weight.shape[-1], stride[1], dilation[1]))
        if None not in wrap:
            padded = F.pad(x, padding, mode="circular")
            return _PeriodicCircularConv2d.apply(x, padded, weight, bias, padding, stride, dilation, groups, wrap)
    return F.conv2d(F.pad(x, padding, mode=PAD_MODES[mode]), weight, bias, stride, 0, dilation, groups)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same arguments, state and parametrizations) whose ``padding_mode="circular"`` goes through
    ``padded_conv2d``; other padding modes are nn.Conv2d's own."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.padding_mode != "circular":
            return super()._conv_forward(x, weight, bias)
        return padded_conv2d(x, weight, bias, self._reversed_padding_repeated_twice, "circular", self.stride,
                             self.dilation, self.groups)
