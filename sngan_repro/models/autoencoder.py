"""Autoencoder critics (BEGAN, EBGAN): the critic reconstructs its input, and its output for an image is the
image's reconstruction energy, not a score. The methods differ in the distance (BEGAN's L1, EBGAN's squared
error, both a mean over pixels), in their encoders and decoders, and in their losses (``sngan_repro.losses``).
"""

import torch
from torch import nn

from ..errors import ConfigError
from ..normalizations import NoNormalization, Normalization


class AutoencoderCritic(nn.Module):
    """``forward(x)``: each image's energy mean_pixels |x - Dec(Enc(x))|^power, shape (N,);
    ``energies_and_embeddings(x)``: the energies and the encoder's outputs Enc(x), one row per image.

    A subclass sets ``encoder`` and ``decoder`` after calling this constructor with its method's name and power."""

    output = "energy"  # what a loss reads from it (``losses.GANLoss.critic_output``)

    def __init__(self, method: str, power: int, norm: Normalization):
        super().__init__()
        if type(norm) is not NoNormalization:  # the method's own balance (k_t, the margin) is what bounds the critic
            raise ConfigError(f"{method}'s autoencoder critic takes no critic normalization (its loss balances it); "
                              f"got {type(norm).__name__}: use norm=none.")
        self.power = power

    def energies_and_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = self.encoder(x)
        energies = (x - self.decoder(embeddings)).abs().pow(self.power).flatten(1).mean(1)
        return energies, embeddings.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.energies_and_embeddings(x)[0]
