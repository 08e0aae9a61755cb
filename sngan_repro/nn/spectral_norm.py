"""Spectral normalization (Miyato et al. 2018, Sec. 2.1 and Algorithm 1) as a parametrization.

``W -> W / sigma(W)``, the weight reshaped to (output units, everything else), sigma estimated by
power iteration with persistent vectors u, v (buffers, so they are checkpointed): one step per
forward in training mode, none in eval mode. u and v are constants for autograd, so the gradient
flows through sigma (the paper's Eq. 12). It uses only the tensor it receives, so it stacks on
another parametrization (e.g. Xiang & Li's weight-normalized layers), and it records the sigma it
divided by in the buffer ``sigma`` for logging.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .normalizing import ScaledWeight, full_precision
from .weight_norm import output_dim

# Power steps at registration, so that sigma is converged before the first update (as PyTorch's own spectral_norm).
_WARMUP_ITERATIONS = 15


class SpectralNorm(ScaledWeight):
    def __init__(self, weight: torch.Tensor, dim: int = 0, n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        if weight.dim() < 2:
            raise ValueError(f"spectral norm needs a matrix or a kernel; got a tensor of shape {tuple(weight.shape)}")
        if n_power_iterations < 1:
            raise ValueError(f"n_power_iterations={n_power_iterations} must be >= 1")
        self.dim, self.n_power_iterations, self.eps = dim, n_power_iterations, eps
        matrix = self._matrix(weight.detach())
        # u, v start from their own fixed-seed draw: the global random stream, and so every weight drawn after
        # this layer's, is the same whatever the normalization (Kligvasser & Michaeli, App. E: "all methods are
        # initialized with the same draw of random weights")
        rng = torch.Generator(matrix.device).manual_seed(0)
        for name, size in zip(("u", "v"), matrix.shape):
            start = torch.randn(size, generator=rng, device=matrix.device, dtype=matrix.dtype)
            self.register_buffer(name, F.normalize(start, dim=0, eps=eps))
        self.register_buffer("sigma", matrix.new_ones(()))
        self._power_iteration(matrix, _WARMUP_ITERATIONS)
        self.sigma.copy_(torch.dot(self.u, matrix @ self.v))

    def _matrix(self, weight: torch.Tensor) -> torch.Tensor:
        # output units first; already so for all but transposed convolutions, which then skip the permutation (one
        # op and one autograd node fewer in every forward)
        return (weight if self.dim == 0 else weight.movedim(self.dim, 0)).flatten(1)

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor, steps: int) -> None:
        """Algorithm 1: v <- W^T u / ||W^T u||, u <- W v / ||W v||, each normalized straight into its buffer."""
        for _ in range(steps):
            F.normalize(torch.mv(matrix.T, self.u), dim=0, eps=self.eps, out=self.v)
            F.normalize(torch.mv(matrix, self.v), dim=0, eps=self.eps, out=self.u)

    @torch.compiler.disable
    def _vectors(self, matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u and v after this forward's power steps (training mode only), as copies: the buffers change in place
        at the next power step, before this graph's backward. Run eagerly under torch.compile (train.compile),
        whose backward would otherwise recompute u and v from the buffers' overwritten values."""
        if self.training:
            self._power_iteration(matrix.detach(), self.n_power_iterations)
        return self.u.clone(), self.v.clone()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        matrix = self._matrix(weight)
        with full_precision(weight):
            u, v = self._vectors(matrix)
            sigma = torch.dot(u, matrix @ v)
        self.sigma.copy_(sigma.detach())
        return weight / sigma

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value  # the stored tensor is the unnormalized weight

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_power_iterations={self.n_power_iterations}"


def spectral_norm(layer: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> nn.Module:
    """Register ``SpectralNorm`` on ``layer.weight`` (output units along dim 1 for transposed convolutions)."""
    parametrization = SpectralNorm(layer.weight, output_dim(layer), n_power_iterations, eps)
    parametrize.register_parametrization(layer, "weight", parametrization)
    return layer
