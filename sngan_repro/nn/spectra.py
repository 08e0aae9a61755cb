"""Spectral quantities of a layer's weight: SN's estimate (Miyato et al., Sec. 2.1), SAN's constant
||W||_{0,inf} (Kligvasser & Michaeli, Lemma 1) and the true operator norm of a circular convolution
(Sedghi et al. 2019). SAN normalizes by ``san_constant``; the diagnostics callback logs all three.

Pure functions: they take the weight a layer actually applies (``layer.weight`` of a parametrized layer) and,
for convolutions, the spatial size of the layer's input. Conv kernels may be laid out
(out, in, kh, kw) or, for transposed convolutions, (in, out, kh, kw): every quantity here is
invariant to that transposition.
"""

import functools
import math

import torch

from .normalizing import full_precision


def sn_estimate(weight: torch.Tensor) -> torch.Tensor:
    """Exact sigma of the kernel reshaped to (out, in*kh*kw): what spectral norm estimates."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1).double(), ord=2).to(weight.dtype)


# 2 MiB of float32 spectra per block: about a core's L2 cache
_CPU_BLOCK_ELEMENTS = 1 << 19


@functools.lru_cache(maxsize=256)
def _dft_basis(input_size: tuple[int, int], kernel_size: tuple[int, int], dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """(kh*kw, 2F): [cos | sin] of 2 pi (f_y y / H + f_x x / W) for every tap (y, x) and each of the F = H (W//2+1)
    frequencies of the half spectrum, so that a flattened kernel times it is [Re | -Im] of its size-(H, W) DFT.

    One real matrix product computes every kernel's spectrum at once, which on both CPUs and GPUs costs a
    fraction of complex or separable transforms of many tiny kernels. It also covers kernels larger than the
    input: a circular convolution then applies the kernel aliased modulo the input size, whose DFT is the
    kernel's spectrum sampled at the H x W frequencies. Kernels are real, so |F(-w)| = |F(w)| and the half
    spectrum holds every modulus and every singular value of the per-frequency channel matrices.

    Cached per layer shape: SAN measures every layer after every critic update, and building the basis anew
    would also copy it to the device each time (a blocking host-to-device copy on GPUs). Never modified in place.
    """
    height, width = input_size
    rows, cols = (torch.arange(n, dtype=torch.float64) for n in kernel_size)
    row_phase = torch.outer(rows, torch.arange(height, dtype=torch.float64)) / height
    col_phase = torch.outer(cols, torch.arange(width // 2 + 1, dtype=torch.float64)) / width
    # (kh, kw, H, W//2+1) phases in turns, reduced modulo 1 before the angle for accuracy
    angle = 2 * math.pi * (row_phase[:, None, :, None] + col_phase[None, :, None, :]).remainder(1.0)
    angle = angle.flatten(0, 1).flatten(1)
    return torch.cat([angle.cos(), angle.sin()], dim=1).to(dtype=dtype, device=device)


def _real_spectra(weight: torch.Tensor, input_size) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts (up to sign) of the size-(H, W) DFT of every single-channel kernel of ``weight``
    (..., kh, kw): two tensors (..., H * (W//2+1)), computed in ``weight``'s floating type (at least float32)."""
    dtype = torch.promote_types(weight.dtype, torch.float32)
    kernels = weight.detach().to(dtype).flatten(-2)
    basis = _dft_basis(tuple(input_size), tuple(weight.shape[-2:]), dtype, weight.device)
    with full_precision(kernels):
        spectra = kernels @ basis
    return spectra.chunk(2, dim=-1)


def _kernel_spectra(weight: torch.Tensor, input_size) -> torch.Tensor:
    """The size-(H, W) DFT of every single-channel kernel, complex: (..., H, W//2+1)."""
    real, imaginary = _real_spectra(weight, input_size)
    return torch.complex(real, -imaginary).unflatten(-1, (input_size[0], input_size[1] // 2 + 1))


def san_constant(weight: torch.Tensor, input_size) -> torch.Tensor:
    """SAN's ||W||_{0,inf} of a circular convolution: max over kernels and frequencies of |F{w_ij}|.

    On CPUs the spectra are taken a cache-sized block of kernels at a time (squared and reduced while in cache:
    3-4x faster than one product for the whole layer); GPUs take the layer in one product."""
    dtype = torch.promote_types(weight.dtype, torch.float32)
    kernels = weight.detach().to(dtype).flatten(-2).flatten(0, -2)
    basis = _dft_basis(tuple(input_size), tuple(weight.shape[-2:]), dtype, weight.device)
    frequencies = basis.shape[1] // 2
    rows = max(1, _CPU_BLOCK_ELEMENTS // basis.shape[1]) if weight.device.type == "cpu" else len(kernels)
    maxima = []
    with full_precision(kernels):
        for block in kernels.split(rows):
            spectra = (block @ basis).square_()
            maxima.append(torch.add(spectra[:, :frequencies], spectra[:, frequencies:]).amax())
    return torch.stack(maxima).amax().sqrt().to(weight.dtype)


def conv_operator_norm(weight: torch.Tensor, input_size) -> torch.Tensor:
    """True operator (spectral) norm of the stride-1 circular convolution on ``input_size`` inputs.

    Sedghi et al. 2019: the convolution is block-diagonalized by the 2-D DFT, so its singular
    values are those of the (out x in) matrices of kernel DFT values, one per frequency.
    """
    per_frequency = _kernel_spectra(weight.double(), input_size).permute(2, 3, 0, 1)
    return torch.linalg.matrix_norm(per_frequency, ord=2).amax().to(weight.dtype)

