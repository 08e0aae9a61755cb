"""Adversarial losses of the discriminator's raw outputs (logits, critic values, or an autoencoder critic's
per-sample energies).

Each loss maps (D(x), D(G(z))) to the discriminator loss and D(G(z)) to the generator loss,
as written in Miyato et al. 2018 (Sec. 4, Eqs. 15-17; WGAN-GP as in Gulrajani et al.). A loss with
training state (BEGAN's k_t) keeps it in buffers: losses are modules of the LightningModule, so the
state is in every checkpoint and a resumed run continues it exactly.

What a loss needs beyond the critic's outputs it takes itself through two hooks, so that the training module never
asks which loss it runs: ``generator_loss`` reads the critic as it likes (EBGAN: its embeddings too), and
``after_generator_update`` updates the loss's state (BEGAN's k_t); both get ``ranks`` (``distributed.Ranks``) for
the global batch's means and rows under DDP.
"""

import torch
import torch.nn.functional as F
from torch import nn


def at_loss_precision(outputs: torch.Tensor) -> torch.Tensor:
    """Critic outputs in at least float32: under mixed precision the losses and the logged means are still taken
    at full precision (a bfloat16 mean of 64 scores keeps 3 digits)."""
    return outputs.to(torch.promote_types(outputs.dtype, torch.float32))


class GANLoss(nn.Module):
    """Interface: ``discriminator(d_real, d_fake)`` and ``generator(d_fake)``, both scalars, and the two hooks of
    the module's doc; a loss with state keeps it in buffers and reports it with ``logged``. ``critic_output`` is
    what it reads from the critic: "score" (a logit or critic value) or "energy" (an autoencoder's reconstruction
    loss)."""

    critic_output = "score"
    #: whether it compares the critic's embeddings of pairs of generated images (EBGAN's pulling-away term)
    reads_embeddings = False
    #: whether it keeps a convergence measure in its buffer ``convergence`` (BEGAN's M_global), which
    #: ``optim.lr_decay=plateau`` watches
    measures_convergence = False

    def discriminator(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator(self, d_fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def generator_loss(self, critic: nn.Module, fake: torch.Tensor, ranks) -> tuple[torch.Tensor, torch.Tensor]:
        """(the generator's loss, D(G(z))) for generated images ``fake``."""
        d_fake = at_loss_precision(critic(fake))
        return self.generator(d_fake), d_fake

    def after_generator_update(self, d_real: torch.Tensor, d_generated: torch.Tensor, ranks) -> None:
        """Update the loss's state after a generator update, from D(x) of the critic update before it and D(G(z))
        of the generator update (this rank's outputs; ``ranks.mean`` of their means is the global batch's)."""

    def logged(self) -> dict[str, torch.Tensor]:
        """The loss's state and diagnostics to log (device tensors)."""
        return {}


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


class BEGANLoss(GANLoss):
    """Boundary-equilibrium GAN (Berthelot, Schumm & Metz 2017, Eqs. 4-5) on an autoencoder critic whose outputs
    are per-sample reconstruction losses L(v):

    L_D = L(x) - k_t L(G(z_D)),   L_G = L(G(z_G)),
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z_G))), 0, 1),   k_0 = 0,

    and the convergence measure M_global = L(x) + |gamma L(x) - L(G(z_G))| (Sec. 3.4.1), logged with k_t."""

    critic_output = "energy"
    measures_convergence = True

    def __init__(self, gamma: float = 0.5, lambda_k: float = 0.001):
        super().__init__()
        self.gamma, self.lambda_k = gamma, lambda_k
        self.register_buffer("k", torch.zeros(()))
        self.register_buffer("convergence", torch.zeros(()))

    def discriminator(self, d_real, d_fake):
        return d_real.mean() - self.k * d_fake.mean()

    def generator(self, d_fake):
        return d_fake.mean()

    @torch.no_grad()
    def after_generator_update(self, d_real, d_generated, ranks) -> None:
        # from the global batch's means, so that every rank keeps the same k
        real_energy, fake_energy = ranks.mean(torch.stack([d_real.mean(), d_generated.mean()]))
        balance = self.gamma * real_energy - fake_energy
        self.convergence.copy_(real_energy + balance.abs())
        self.k.add_(self.lambda_k * balance).clamp_(0.0, 1.0)

    def logged(self) -> dict[str, torch.Tensor]:
        return {"began/k": self.k, "began/m_global": self.convergence}


class EBGANLoss(GANLoss):
    """Energy-based GAN (Zhao, Mathieu & LeCun 2017, Eqs. 1-2 and 7) on an autoencoder critic whose outputs are
    per-sample energies D(v) (arch=ebgan: the mean squared reconstruction error over pixels):

    L_D = D(x) + [m - D(G(z))]^+,   L_G = D(G(z)) + lambda_PT f_PT(S),

    each term a mean over the batch, S the critic's encoder outputs for G(z). The margin m is in the critic's
    energy units: with arch=ebgan a mean over pixels of images in [-1, 1] (a margin m' for an energy summed over
    C x H x W pixels is m' / (C H W) here)."""

    critic_output = "energy"
    reads_embeddings = True

    def __init__(self, margin: float = 1.0, pulling_away: float = 0.1):
        super().__init__()
        self.margin, self.pulling_away = margin, pulling_away

    def discriminator(self, d_real, d_fake):
        return d_real.mean() + F.relu(self.margin - d_fake).mean()

    def generator(self, d_fake, embeddings):
        return d_fake.mean() + self.pulling_away * pulling_away_term(embeddings)

    def generator_loss(self, critic, fake, ranks):
        # the pulling-away term over the global batch's pairs, as in one process
        d_fake, embeddings = map(at_loss_precision, critic.energies_and_embeddings(fake))
        return self.generator(d_fake, ranks.gather(embeddings)), d_fake


def pulling_away_term(embeddings: torch.Tensor) -> torch.Tensor:
    """EBGAN's pulling-away term (Zhao, Mathieu & LeCun 2017, Eq. 7) on a batch of encoder outputs S (one row per
    sample): the mean over ordered pairs i != j of the squared cosine similarity of S_i and S_j."""
    rows = F.normalize(embeddings.flatten(1), dim=1)
    count = rows.shape[0]
    cosines = rows @ rows.T
    return (cosines.square().sum() - cosines.diagonal().square().sum()) / (count * (count - 1))
