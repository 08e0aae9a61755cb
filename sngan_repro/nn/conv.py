"""Convolutions with circular padding, computed without the padding's extra work where possible.

SAN's critic pads circularly (Kligvasser & Michaeli, Sec. 3: Lemma 1 holds for circular convolutions). Done as
``F.conv2d(F.pad(x, mode="circular"))``, this costs more than zero padding on a CPU beyond the pad's copy: oneDNN
skips the taps that fall on zero padding, which at 4 x 4 with a 3 x 3 kernel are 31 % of them, while a circular
convolution has none to skip (1.19x the multiply-adds over the standard CNN's critic). And autograd computes the
input's gradient at the padded size, then adds each padded strip back through slice copies.

``padded_conv2d`` takes each periodic circular layer (its output's period times the stride is the input's, as in
every circular layer of the architectures here) one of two ways:
- in the frequency domain, where a circular convolution is a product per frequency (``_spectral_circular_conv2d``),
  when that needs under a third of the direct multiply-adds: on CPU, the wide 3 x 3 layers on maps of 8 x 8 or less;
- otherwise as the convolution of the padded input whose input gradient is itself periodic: the transposed
  convolution of the output gradient, circularly padded by a row or two, cropped to exactly the input
  (``_PeriodicCircularConv2d``).
On CPU the two took SAN's critic update from 1.22x to 0.99x the zero-padded one.
"""

import functools
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


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # a first call under inference mode (evaluation) must not cache tensors training rejects
def _spectral_bases(size: tuple[int, int], kernel: tuple[int, int], stride: int, before: tuple[int, int],
                    device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Real and imaginary parts of the three DFT matrices of ``_spectral_circular_conv2d`` for one geometry.

    With the input split into its stride x stride phases x_a (pixel_unshuffle: x_a[i] = x[stride i + a]), a periodic
    circular convolution is y[o] = sum_t w[t] x_a(t)[o + q(t)], where the tap t reads phase a(t) = (t - before) mod
    stride at the shift q(t) = (t - before - a(t)) / stride. On the n = size / stride grid its spectrum is
    Y[u] = sum_t w[t] e^{2 pi i u q(t) / n} X_a(t)[u]. Along the last axis only the n // 2 + 1 non-negative
    frequencies are kept; the inverse counts the others through Hermitian symmetry (weight 2)."""
    def one_axis(length: int, taps: int, start: int, half: bool):
        n = length // stride
        freqs = torch.arange(n // 2 + 1 if half else n, dtype=torch.float64)
        positions = torch.arange(n, dtype=torch.float64)
        forward = torch.polar(torch.ones(len(freqs), n, dtype=torch.float64),
                              -2 * math.pi * freqs[:, None] * positions[None, :] / n)  # (u, i)
        counted = torch.ones(len(freqs), dtype=torch.float64)
        if half:
            counted[1:n - n // 2] = 2  # the frequency v stands for -v too, except 0 and an even n's n / 2
        inverse = forward.conj().T * counted / n  # (i, u)
        offsets = torch.arange(taps) - start
        phase, shift = offsets % stride, torch.div(offsets, stride, rounding_mode="floor")
        per_tap = torch.polar(torch.ones(len(freqs), taps, dtype=torch.float64),
                              2 * math.pi * freqs[:, None] * shift[None, :].double() / n)  # (u, t)
        kernel_basis = per_tap[:, None, :] * (phase[None, :] == torch.arange(stride)[:, None])  # (u, a, t)
        return forward, inverse, kernel_basis

    (forward_h, inverse_h, kernel_h), (forward_w, inverse_w, kernel_w) = (
        one_axis(size[0], kernel[0], before[0], False), one_axis(size[1], kernel[1], before[1], True))
    # 2-D: outer products of the axes, frequencies (u, v) flattened in that order
    forward = torch.einsum("ui,vj->uvij", forward_h, forward_w).flatten(2).flatten(0, 1)
    inverse = torch.einsum("iu,jv->ijuv", inverse_h, inverse_w).flatten(2).flatten(0, 1)
    kernel_basis = torch.einsum("uas,vbt->uvabst", kernel_h, kernel_w)
    kernel_basis = kernel_basis.reshape(-1, kernel[0] * kernel[1])  # ((u, v, a_h, a_w), (t_h, t_w))
    return tuple(part.to(device, dtype).contiguous() for matrix in (forward, kernel_basis, inverse)
                 for part in (matrix.real, matrix.imag))


def _spectral_multiply_adds(batch: int, c_in: int, c_out: int, size: tuple[int, int], stride: int) -> int:
    """Multiply-adds of ``_spectral_circular_conv2d``'s forward: the input's DFT, three real products per frequency
    (Gauss), the inverse DFT."""
    points = (size[0] // stride) * (size[1] // stride)
    freqs = (size[0] // stride) * (size[1] // stride // 2 + 1)
    phases = c_in * stride * stride
    return batch * freqs * (2 * points * phases + 3 * phases * c_out + 2 * points * c_out)


def _spectral_is_cheaper(x: torch.Tensor, weight: torch.Tensor, stride, dilation, groups: int) -> bool:
    """Whether a periodic circular convolution goes through ``_spectral_circular_conv2d``: on CPU, for an ungrouped,
    undilated layer with equal strides, when that needs under a third of the direct convolution's multiply-adds.
    The third is measured: on this project's CPU its matrix products ran at about half oneDNN's convolution rate
    and its permutes cost the rest (a stride-1 3 x 3 layer at 8 x 8 or less qualifies). On GPUs, cuDNN multiplies
    zero padding as it does any padding, so the direct circular convolution costs what the zero-padded one does."""
    if x.device.type != "cpu" or groups != 1 or dilation != (1, 1) or stride[0] != stride[1]:
        return False
    if torch.compiler.is_compiling():  # the compiler generates its own convolution
        return False
    batch, c_in, height, width = x.shape
    c_out, _, k_h, k_w = weight.shape
    direct = batch * c_in * c_out * (height // stride[0]) * (width // stride[1]) * k_h * k_w
    return 3 * _spectral_multiply_adds(batch, c_in, c_out, (height, width), stride[0]) < direct


def _spectral_circular_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, before, stride):
    """A periodic circular convolution (groups 1, dilation 1, equal strides) done in the frequency domain, as
    real matrix products (see ``_spectral_bases``): the DFT of each phase of the input, at each frequency one
    (batch x in * stride^2) @ (in * stride^2 x out) product with the kernel's spectrum, the inverse DFT. Autograd
    differentiates it (twice, for gradient penalties) through plain matrix products."""
    batch, c_in, height, width = x.shape
    c_out, _, k_h, k_w = weight.shape
    rows, cols = height // stride, width // stride
    forward_re, forward_im, kernel_re, kernel_im, inverse_re, inverse_im = _spectral_bases(
        (height, width), (k_h, k_w), stride, before, x.device, x.dtype)
    # (i, j, n, a_h, a_w, c): positions first, then the contraction's (a, c) last, as the per-frequency products want
    phases = x.reshape(batch, c_in, rows, stride, cols, stride).permute(2, 4, 0, 3, 5, 1)
    phases = phases.reshape(rows * cols, -1)
    spectrum_re = (forward_re @ phases).view(-1, batch, c_in * stride * stride)
    spectrum_im = (forward_im @ phases).view(-1, batch, c_in * stride * stride)
    taps = weight.permute(2, 3, 1, 0).reshape(k_h * k_w, c_in * c_out)  # (t, (c, o))
    kernel_spectrum_re = (kernel_re @ taps).view(-1, c_in * stride * stride, c_out)  # (f, (a, c), o)
    kernel_spectrum_im = (kernel_im @ taps).view(-1, c_in * stride * stride, c_out)
    # (X_re + i X_im)(K_re + i K_im) in three real products (Gauss)
    both = torch.bmm(spectrum_re + spectrum_im, kernel_spectrum_re + kernel_spectrum_im)
    real_part = torch.bmm(spectrum_re, kernel_spectrum_re)
    imaginary_by_imaginary = torch.bmm(spectrum_im, kernel_spectrum_im)
    out_re = (real_part - imaginary_by_imaginary).view(-1, batch * c_out)
    out_im = (both - real_part - imaginary_by_imaginary).view(-1, batch * c_out)
    out = torch.addmm(inverse_re @ out_re, inverse_im, out_im, alpha=-1).view(rows, cols, batch, c_out)
    out = out.permute(2, 3, 0, 1)
    # under autocast the products ran in the lower precision, as a convolution's would: so does the bias
    return (out if bias is None else out + bias.to(out.dtype).view(1, -1, 1, 1)).contiguous()


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
        if None not in wrap and _spectral_is_cheaper(x, weight, stride, dilation, groups):
            return _spectral_circular_conv2d(x, weight, bias, (top, left), stride[0])
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
