"""Adversarial losses: pure functions of the discriminator's raw outputs (logits / critic values).

Each loss maps (D(x), D(G(z))) to the discriminator loss and D(G(z)) to the generator loss,
as written in Miyato et al. 2018 (Sec. 4, Eqs. 15-17; WGAN-GP as in Gulrajani et al.).
"""

import torch
import torch.nn.functional as F


class GANLoss:
    """Interface: ``discriminator(d_real, d_fake)`` and ``generator(d_fake)``, both scalars."""

    def discriminator(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class NonSaturatingLoss(GANLoss):
    """Standard GAN loss: L_D = E[softplus(-D(x))] + E[softplus(D(G(z)))], L_G = E[softplus(-D(G(z)))]."""

    def discriminator(self, d_real, d_fake):
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()

    def generator(self, d_fake):
        return F.softplus(-d_fake).mean()


class HingeLoss(GANLoss):
    """Hinge loss: L_D = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], L_G = -E[D(G(z))]."""

    def discriminator(self, d_real, d_fake):
        return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()

    def generator(self, d_fake):
        return -d_fake.mean()


class WassersteinLoss(GANLoss):
    """Wasserstein loss: L_D = E[D(G(z))] - E[D(x)], L_G = -E[D(G(z))] (a penalty or clipping comes from norm=)."""

    def discriminator(self, d_real, d_fake):
        return d_fake.mean() - d_real.mean()

    def generator(self, d_fake):
        return -d_fake.mean()
