"""The run's noise: every draw comes from a generator seeded by (seed, stream, step) only.

So a resumed run draws exactly what an uninterrupted one would, and every rank makes the same draw: under DDP each
rank draws for the whole global batch and keeps its rows ``rank::world_size`` (``distributed.Ranks.own_rows``), so
the ranks together compute what one process computes on the global batch, whatever the number of ranks.
"""

import hashlib

import torch

STREAMS = ("discriminator", "generator", "fixed", "penalty", "normalization", "metrics")
# N(0, I); U(-1, 1) (DCGAN's); U(0, 1) (infoGAN-style code: the report's BEGAN, EBGAN and WGAN-GP rows)
LATENT_DISTRIBUTIONS = ("normal", "uniform", "uniform_0_1")


def stream_seed(seed: int, stream: str, step: int) -> int:
    """A 63-bit seed for one draw of one noise stream, the same on every rank."""
    # the "/0/" is where a rank once was: kept so that seeded runs reproduce the runs made before
    key = f"{seed}/0/{STREAMS.index(stream)}/{step}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


class NoiseStreams:
    """Seeded generators, one per device, and latent codes drawn from the prior (``LATENT_DISTRIBUTIONS``)."""

    def __init__(self, seed: int, latent_dim: int, latent_distribution: str):
        self.seed, self.latent_dim, self.latent_distribution = seed, latent_dim, latent_distribution
        self._generators: dict[torch.device, torch.Generator] = {}

    def rng(self, stream: str, step: int, device: torch.device) -> torch.Generator:
        """A generator on ``device`` seeded by (seed, stream, step) only."""
        generator = self._generators.get(device)
        if generator is None:
            generator = self._generators[device] = torch.Generator(device)
        return generator.manual_seed(stream_seed(self.seed, stream, step))

    def latent(self, n: int, stream: str, step: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """n codes of (seed, stream, step), drawn in float32 whatever ``dtype`` (every precision draws alike)."""
        generator, shape = self.rng(stream, step, device), (n, self.latent_dim)
        if self.latent_distribution == "uniform":
            codes = torch.rand(shape, generator=generator, device=device).mul_(2).sub_(1)
        elif self.latent_distribution == "uniform_0_1":
            codes = torch.rand(shape, generator=generator, device=device)
        else:
            codes = torch.randn(shape, generator=generator, device=device)
        return codes.to(dtype)


class RankShare:
    """Draws made as for all ranks' samples together, of which this rank keeps rows ``rank::world_size``."""

    def __init__(self, generator: torch.Generator, rank: int, world_size: int):
        self.generator, self.rank, self.world_size = generator, rank, world_size

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """U(0, 1) of shape (n, *shape) for this rank's n samples."""
        draw = torch.rand((n * self.world_size, *shape), generator=self.generator, device=self.generator.device)
        return draw[self.rank :: self.world_size]
