"""Sparsity aware normalization (SAN, Kligvasser & Michaeli).

Each critic convolution is divided by g * sigma with sigma = max_{i,j,omega} |F{w_ij}(omega)|, the
largest DFT modulus of any single input->output kernel zero-padded to the layer's input size
(Lemma 1: ||W||_{0,inf} of a circular convolution); critic convolutions pad circularly (Sec. 3).
With ``subset_ratio`` r < 1, sigma is the maximum over a random fraction r of the m*n kernels and g
defaults to H_{mn} / H_{[mn r]} (App. C, Eq. 20: the expected maximum of k i.i.d. exponential draws
is H_k / lambda); ``compensation`` sets g explicitly (App. E, Fig. 15 tries 0.5 to 1.5).

Two ways to apply it, ``mode``:

- ``projection`` (the paper's Algorithm 1, App. D): the *stored* weight is normalized in place,
  W <- W / (g sigma), before the first critic update and then after every ``update_every``-th one
  (Sec. 4, Fig. 6), and the gradient step acts on the normalized weight. A layer whose weight is
  already reparametrized (e.g. Xiang & Li's weight-normalized layers) is refused: dividing its
  stored tensor would change nothing.
- ``reparametrization`` (what the authors' released code does): the forward pass divides by a
  detached sigma kept in a buffer, recomputed from the tensor the parametrization receives at the
  first forward after every ``update_every``-th critic update. Under Adam the two are different
  algorithms: here the raw weights grow and the effective step of the normalized weight shrinks.

Dense layers use "the top singular value of the weight matrix, as in (Miyato et al. 2018)" (Sec.
3): ``dense: spectral_norm`` (the default) is Miyato et al.'s spectral normalization, the gradient
flowing through sigma; ``dense: svd`` divides by the exact, detached top singular value, applied
like the convolutions. g applies to the convolutions only: it corrects their kernel-subset
maximum and loosens their l_inf bound.
"""

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..nn import ScaledWeight, spectral_norm
from ..nn.spectra import san_constant
from .base import Normalization

MODES = ("projection", "reparametrization")
DENSE_METHODS = ("spectral_norm", "svd")
# The child module of a layer normalized in projection mode.
PROJECTION_ATTRIBUTE = "sparsity_aware_projection"


def harmonic_number(n: int) -> float:
    return math.fsum(1.0 / k for k in range(1, n + 1))


def subset_size(num_kernels: int, ratio: float) -> int:
    """[mn r] of Eq. 20, read as rounding to the nearest integer (at least one kernel)."""
    return max(1, round(num_kernels * ratio))


def compensation_factor(num_kernels: int, ratio: float) -> float:
    """g = H_{mn} / H_{[mn r]}: corrects the expected maximum over a subset of the kernels (App. C, Eq. 20)."""
    return harmonic_number(num_kernels) / harmonic_number(subset_size(num_kernels, ratio))


class _SparsityAwareConstant(ScaledWeight):
    """sigma of one layer, kept in the buffer ``sigma``: for a convolution (``input_size`` given) the SAN constant
    over all kernels or a random subset, for a dense layer its top singular value. The layer is divided by
    ``compensation * sigma``."""

    def __init__(self, weight: torch.Tensor, input_size, subset_ratio: float, compensation: float | None):
        super().__init__()
        self.input_size = None if input_size is None else tuple(input_size)
        self.subset_ratio = subset_ratio if self.input_size else 1.0
        self.num_kernels = weight.shape[0] * weight.shape[1]
        if not self.input_size:
            compensation = 1.0  # g is about convolution kernels (App. C, App. E)
        elif compensation is None:
            compensation = compensation_factor(self.num_kernels, self.subset_ratio)
        self.compensation = float(compensation)
        self.register_buffer("sigma", torch.ones((), dtype=weight.dtype, device=weight.device))

    def choose_kernels(self, rng: torch.Generator) -> torch.Tensor | None:
        """Indices of the kernels the next sigma is taken over (None: all of them)."""
        if self.subset_ratio == 1.0:
            return None
        chosen = torch.randperm(self.num_kernels, generator=rng, device=rng.device)
        return chosen[: subset_size(self.num_kernels, self.subset_ratio)]

    def first_kernels(self, weight: torch.Tensor) -> torch.Tensor | None:
        """The subset for the constant at construction, from a fixed seed (the run's seed drives the later ones)."""
        return self.choose_kernels(torch.Generator(weight.device).manual_seed(0))

    @torch.no_grad()
    def measure(self, weight: torch.Tensor, kernels: torch.Tensor | None) -> None:
        if self.input_size is None:
            self.sigma.copy_(torch.linalg.matrix_norm(weight.detach().flatten(1).double(), ord=2))
            return
        chosen = weight.detach().flatten(0, 1)
        if kernels is not None:
            chosen = chosen[kernels.to(chosen.device)]
        self.sigma.copy_(san_constant(chosen, self.input_size))

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, subset_ratio={self.subset_ratio}, compensation={self.compensation:.4f}"


class SparsityAwareScale(_SparsityAwareConstant):
    """Parametrization W -> W / (g sigma) with sigma detached; ``request_refresh`` makes the next forward
    recompute sigma from the tensor it receives. The pending request is part of the state dict, so a
    checkpoint taken between a request and the next forward resumes exactly."""

    def __init__(self, weight: torch.Tensor, input_size, subset_ratio: float, compensation: float | None):
        super().__init__(weight, input_size, subset_ratio, compensation)
        self._refresh_due, self._kernels = False, None
        self.measure(weight, self.first_kernels(weight))

    def request_refresh(self, rng: torch.Generator) -> None:
        self._refresh_due, self._kernels = True, self.choose_kernels(rng)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self._refresh_due:
            self.measure(weight, self._kernels)
            self._refresh_due, self._kernels = False, None
        return weight / (self.compensation * self.sigma)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value

    def get_extra_state(self) -> dict:
        return {"refresh_due": self._refresh_due, "kernels": self._kernels}

    def set_extra_state(self, state: dict) -> None:
        self._refresh_due, self._kernels = state["refresh_due"], state["kernels"]


class SparsityAwareProjection(_SparsityAwareConstant):
    """Algorithm 1's step W <- W / (g sigma) on a layer's stored weight; ``sigma`` keeps the last one measured."""

    @torch.no_grad()
    def project_(self, weight: torch.Tensor, kernels: torch.Tensor | None) -> None:
        self.measure(weight, kernels)
        weight.div_(self.compensation * self.sigma)


class SparsityAwareNormalization(Normalization):
    conv_padding_mode = "circular"  # Lemma 1 holds for circular convolutions

    def __init__(self, mode: str = "projection", update_every: int = 1, subset_ratio: float = 1.0,
                 compensation: float | None = None, dense: str = "spectral_norm"):
        if mode not in MODES:
            raise ConfigError(f"norm.mode={mode!r} is not one of {', '.join(MODES)}.")
        if not (isinstance(update_every, int) and update_every >= 1):
            raise ConfigError(f"norm.update_every={update_every} must be an integer >= 1 (critic updates).")
        if not 0.0 < subset_ratio <= 1.0:
            raise ConfigError(f"norm.subset_ratio={subset_ratio} must be in (0, 1].")
        if compensation is not None and compensation <= 0:
            raise ConfigError(f"norm.compensation={compensation} must be positive (or null for H_mn / H_[mn r]).")
        if dense not in DENSE_METHODS:
            raise ConfigError(f"norm.dense={dense!r} is not one of {', '.join(DENSE_METHODS)}.")
        self.mode, self.update_every, self.dense = mode, update_every, dense
        self.subset_ratio, self.compensation = subset_ratio, compensation

    def wrap_weight_layer(self, layer: nn.Module, input_size=None) -> nn.Module:
        convolution = isinstance(layer, nn.Conv2d)
        if convolution and input_size is None:
            raise ConfigError("SAN needs the input size of every convolution; this architecture does not give it.")
        if not convolution and self.dense == "spectral_norm":
            return spectral_norm(layer)
        size = input_size if convolution else None
        if self.mode == "reparametrization":
            scale = SparsityAwareScale(layer.weight, size, self.subset_ratio, self.compensation)
            parametrize.register_parametrization(layer, "weight", scale)
            return layer
        if parametrize.is_parametrized(layer, "weight"):
            raise ConfigError("norm.mode=projection divides a layer's stored weight, but this architecture already "
                              "reparametrizes it (as arch.variant=wn does), which would undo the division; use "
                              "norm.mode=reparametrization.")
        projection = SparsityAwareProjection(layer.weight, size, self.subset_ratio, self.compensation)
        layer.add_module(PROJECTION_ATTRIBUTE, projection)
        projection.project_(layer.weight, projection.first_kernels(layer.weight))  # Algorithm 1: before the 1st step
        return layer

    def after_discriminator_update(self, discriminator: nn.Module, step: int, rng: torch.Generator) -> None:
        if (step + 1) % self.update_every:
            return
        for layer in discriminator.modules():
            if isinstance(layer, SparsityAwareScale):
                layer.request_refresh(rng)
            elif isinstance(projection := getattr(layer, PROJECTION_ATTRIBUTE, None), SparsityAwareProjection):
                projection.project_(layer.weight, projection.choose_kernels(rng))
