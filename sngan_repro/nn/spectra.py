"""Spectral quantities of a layer's weight: SN's estimate (Miyato et al., Sec. 2.1), SAN's constant
||W||_{0,inf} (Kligvasser & Michaeli, Lemma 1) and the true operator norm of a circular convolution
(Sedghi et al. 2019). SAN normalizes by ``san_constant``; the diagnostics callback logs all three.

Pure functions: they take the weight a layer actually applies (``layer.weight`` of a parametrized layer) and,
for convolutions, the spatial size of the layer's input. Conv kernels may be laid out
(out, in, kh, kw) or, for transposed convolutions, (in, out, kh, kw): every quantity here is
invariant to that transposition.
"""

import math

import torch


def sn_estimate(weight: torch.Tensor) -> torch.Tensor:
    """Exact sigma of the kernel reshaped to (out, in*kh*kw): what spectral norm estimates."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1).double(), ord=2).to(weight.dtype)


def _dft_matrix(size: int, taps: int, frequencies: int, dtype: torch.dtype) -> torch.Tensor:
    """exp(-2 pi i f t / size) for f < frequencies, t < taps."""
    angle = torch.outer(torch.arange(frequencies, dtype=torch.float64), torch.arange(taps, dtype=torch.float64))
    return torch.polar(torch.ones_like(angle), -2 * math.pi * angle / size).to(dtype)


def _kernel_spectra(weight: torch.Tensor, input_size) -> torch.Tensor:
    """The size-(H, W) DFT of every single-channel kernel: (out, in, H, W//2+1).

    Computed as F_H w F_W^T with explicit DFT matrices, which also covers kernels larger than the
    input (a circular convolution then applies the kernel aliased modulo the input size, whose
    DFT is the kernel's spectrum sampled at the H x W frequencies). Kernels are real, so
    |F(-w)| = |F(w)| and the half spectrum holds every modulus and every singular value of the
    per-frequency channel matrices.
    """
    height, width = input_size
    complex_dtype = torch.complex128 if weight.dtype == torch.float64 else torch.complex64
    rows = _dft_matrix(height, weight.shape[-2], height, complex_dtype).to(weight.device)
    cols = _dft_matrix(width, weight.shape[-1], width // 2 + 1, complex_dtype).to(weight.device)
    return rows @ weight.detach().to(complex_dtype) @ cols.T


def san_constant(weight: torch.Tensor, input_size) -> torch.Tensor:
    """SAN's ||W||_{0,inf} of a circular convolution: max over kernels and frequencies of |F{w_ij}|."""
    squared_modulus = torch.view_as_real(_kernel_spectra(weight, input_size)).pow(2).sum(-1)
    return squared_modulus.amax().sqrt().to(weight.dtype)


def conv_operator_norm(weight: torch.Tensor, input_size) -> torch.Tensor:
    """True operator (spectral) norm of the stride-1 circular convolution on ``input_size`` inputs.

    Sedghi et al. 2019: the convolution is block-diagonalized by the 2-D DFT, so its singular
    values are those of the (out x in) matrices of kernel DFT values, one per frequency.
    """
    per_frequency = _kernel_spectra(weight.double(), input_size).permute(2, 3, 0, 1)
    return torch.linalg.matrix_norm(per_frequency, ord=2).amax().to(weight.dtype)

