"""The Lightning module: manual optimization alternating n_dis discriminator updates and one
generator update.

Run length, logging and checkpoints count generator updates (``g_step``), as the papers do;
Lightning's ``global_step`` counts every optimizer step of both networks. All training state
(counters, optimizer and scheduler states, normalization buffers) is in the checkpoint, and
every noise draw comes from a generator seeded by (seed, stream, step), so a resumed run
draws exactly what an uninterrupted one would.

Under DDP (``sngan_repro.distributed``) ``train.batch_size`` is the global batch. Every rank makes
the draw of the whole global batch and keeps rows ``rank::world_size``, the rows of the real
batch it holds (``data.base.ResumableSampler``), so the ranks together compute what one process
computes on the global batch, whatever the number of ranks.
"""

import hashlib
import itertools
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.distributed.nn.functional import all_gather
from torch.optim.lr_scheduler import LambdaLR

from .checkpointing import checkpoint_folders, newest_checkpoint
from .errors import CheckpointError, TrainingDivergedError
from .instantiate import instantiate_checked
from .losses import GANLoss
from .models import build_models
from .nn import normalizing_constants, projected_layers
from .normalizations import build_normalization
from .precision import PerNetworkLossScaling

_NOISE_STREAMS = ("discriminator", "generator", "fixed", "penalty", "normalization", "metrics")


def stream_seed(seed: int, stream: str, step: int) -> int:
    """A 63-bit seed for one draw of one noise stream, the same on every rank."""
    # the "/0/" is where a rank once was: kept so that seeded runs reproduce the runs made before
    key = f"{seed}/0/{_NOISE_STREAMS.index(stream)}/{step}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _gradient_norm(module: torch.nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def _loss_precision(scores: torch.Tensor) -> torch.Tensor:
    """Critic scores in at least float32: under mixed precision the losses and the logged means are still taken
    at full precision (a bfloat16 mean of 64 scores keeps 3 digits)."""
    return scores.to(torch.promote_types(scores.dtype, torch.float32))


class RankShare:
    """Draws made as for all ranks' samples together, of which this rank keeps rows ``rank::world_size``."""

    def __init__(self, generator: torch.Generator, rank: int, world_size: int):
        self.generator, self.rank, self.world_size = generator, rank, world_size

    def rand(self, n: int, *shape: int) -> torch.Tensor:
        """U(0, 1) of shape (n, *shape) for this rank's n samples."""
        draw = torch.rand((n * self.world_size, *shape), generator=self.generator, device=self.generator.device)
        return draw[self.rank :: self.world_size]


class GAN(pl.LightningModule):
    """A GAN trained as a composed config says (see ``sngan_repro.compose``).

    ``cfg`` is kept as a plain dict in the checkpoint's hyper-parameters, so a checkpoint
    rebuilds its own module with ``GAN.load_from_checkpoint(path)``.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        self.save_hyperparameters({"cfg": cfg}, logger=False)  # the HParams tab gets a summary (callbacks/hparams.py)
        self.cfg = OmegaConf.create(cfg)
        self.automatic_optimization = False

        self.norm = build_normalization(self.cfg)
        self.generator, self.discriminator = build_models(self.cfg, norm=self.norm)
        # layers that keep their parameters in a set after every update (nn.protocols), collected once
        self._projected = {"generator": projected_layers(self.generator),
                           "discriminator": projected_layers(self.discriminator)}
        # accelerations (train.channels_last, train.compile): the same math in another memory layout or compiled
        self.memory_format = torch.channels_last if self.cfg.train.get("channels_last") else torch.contiguous_format
        for network in (self.generator, self.discriminator):
            if self.memory_format == torch.channels_last:
                network.to(memory_format=torch.channels_last)
            if self.cfg.train.get("compile"):
                network.compile()  # in place: the state dict, and so every checkpoint, stays the same
        self.loss: GANLoss = instantiate_checked(self.cfg.loss)
        self.output_range = tuple(self.cfg.arch.output_range)
        self._noise_generators: dict[torch.device, torch.Generator] = {}
        # the codes of the sample grids: the same all run long, on every rank
        self.register_buffer("fixed_z", self.latent_draw(self.cfg.train.num_samples, "fixed", 0))
        # each network's DistributedDataParallel wrapper under DDP, set by sngan_repro.distributed.GANStrategy
        # (a plain dict: the wrappers are not submodules, so checkpoints are the same with and without DDP)
        self.distributed_wrappers: dict[str, torch.nn.Module] = {}

        self.g_step = 0  # generator updates done
        self.d_step = 0  # discriminator updates done
        self.d_steps_since_g = 0
        self.generator_stepped = False  # did the last training_step end with a generator update
        self.last_metrics: dict[str, float] = {}  # scalars of the last logging step
        # mean D(x) - mean D(G(z)) of the last critic update before each generator update, kept on the device
        # and written at the next logging step (every generator step is logged without a per-step host sync)
        self._pending_gaps: list[tuple[int, torch.Tensor]] = []
        # wall seconds and count of the critic updates timed before the next logged generator update
        self._critic_timing = [0.0, 0]
        # the generator step of the last checkpoint this process wrote, and of the one it resumed from
        self._saved_at: int | None = None
        self.resumed_at: int | None = None

    @property
    def world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    # -- noise -------------------------------------------------------------------------------
    def rng(self, stream: str, step: int) -> torch.Generator:
        """A generator on this module's device seeded by (seed, stream, step) only: the same on every rank."""
        generator = self._noise_generators.get(self.device)
        if generator is None:
            generator = self._noise_generators[self.device] = torch.Generator(self.device)
        return generator.manual_seed(stream_seed(self.cfg.seed, stream, step))

    def latent_draw(self, n: int, stream: str, step: int) -> torch.Tensor:
        """n codes from the latent prior, a function of (seed, stream, step) only (the same on every rank)."""
        generator, device = self.rng(stream, step), self.device
        shape = (n, self.cfg.arch.latent_dim)
        if self.cfg.arch.latent_distribution == "uniform":
            codes = torch.rand(shape, generator=generator, device=device).mul_(2).sub_(1)
        else:
            codes = torch.randn(shape, generator=generator, device=device)
        return codes.to(self.dtype)  # drawn in float32 whatever the precision, so every precision draws alike

    def sample_latent(self, n: int, stream: str, step: int) -> torch.Tensor:
        """This rank's n codes: its rows of the draw for all ranks' n * world_size."""
        return self.latent_draw(n * self.world_size, stream, step)[self.global_rank :: self.world_size]

    def rank_share(self, stream: str, step: int) -> RankShare:
        """Uniform draws of one stream and step, made for all ranks and cut to this rank's rows."""
        return RankShare(self.rng(stream, step), self.global_rank, self.world_size)

    def trained(self, network: str) -> torch.nn.Module:
        """``generator`` or ``discriminator`` as trained: under DDP its wrapper, whose backward all-reduces the
        network's gradients (once per backward), else the network itself."""
        return self.distributed_wrappers.get(network) or getattr(self, network)

    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes with the generator in eval mode (BN running statistics)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z)
        finally:
            self.generator.train(was_training)

    # -- optimization ----------------------------------------------------------------------------
    def configure_optimizers(self):
        optim = self.cfg.optim
        opt_g = instantiate_checked(optim.optimizer, params=self.generator.parameters(), lr=optim.lr_g)
        opt_d = instantiate_checked(optim.optimizer, params=self.discriminator.parameters(), lr=optim.lr_d)
        if optim.lr_decay == "constant":
            return [opt_g, opt_d]
        total = self.cfg.train.steps  # linear decay to 0 over the run, stepped once per G update
        schedulers = [LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total)) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def on_train_start(self) -> None:
        if self.g_step >= self.cfg.train.steps:  # resumed from a run that already reached train.steps
            self.trainer.should_stop = True

    def _logs_at(self, g_step: int) -> bool:
        return g_step % self.cfg.train.log_every == 0 or g_step == self.cfg.train.steps

    def _synchronized_clock(self) -> float:
        """time.perf_counter() once the device has finished its queued work (a host sync on GPUs)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def training_step(self, real: torch.Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real = real.contiguous(memory_format=self.memory_format)
        # the critic updates before a logged generator update are timed (Kligvasser & Michaeli, App. F: time of one
        # critic update); only there, since timing a GPU needs a host sync
        timed = self._logs_at(self.g_step + 1)
        started = self._synchronized_clock() if timed else 0.0
        d_out = self.discriminator_update(real, opt_d)
        if timed:
            self._critic_timing[0] += self._synchronized_clock() - started
            self._critic_timing[1] += 1
        self.d_steps_since_g += 1
        self.generator_stepped = self.d_steps_since_g >= self.n_dis(self.g_step)
        if not self.generator_stepped:
            return
        g_out = self._generator_update(opt_g)
        if type(self.loss).after_generator_update is not GANLoss.after_generator_update:  # a loss with state
            # (BEGAN's k_t): from the global batch's means, so that every rank keeps the same state
            real, generated = self._mean_over_ranks(torch.stack([d_out["d_out/real"].mean(),
                                                                 g_out["d_out/generated"].mean()]))
            self.loss.after_generator_update(real, generated)
        self.g_step += 1
        self.d_steps_since_g = 0
        self._pending_gaps.append((self.g_step, d_out["d_out/real"].mean() - d_out["d_out/fake"].mean()))
        for scheduler in self._schedulers():
            scheduler.step()
        if self._logs_at(self.g_step):
            self._log_scalars({**d_out, **g_out})
        if self.g_step >= self.cfg.train.steps:
            self.trainer.should_stop = True

    def discriminator_loss(self, real: torch.Tensor, step: int):
        """The critic's loss on a real batch and fresh fakes: (total, its normalization's penalty or None, D(x),
        D(G(z)))."""
        z = self.sample_latent(real.shape[0], "discriminator", step)
        with torch.no_grad():
            fake = self.generator(z)
        critic = self.trained("discriminator")
        d_real, d_fake = _loss_precision(critic(real)), _loss_precision(critic(fake))
        loss = self.loss.discriminator(d_real, d_fake)
        penalty = self.norm.penalty(critic, real, fake, self.rank_share("penalty", step))
        return (loss if penalty is None else loss + penalty), penalty, d_real, d_fake

    def n_dis(self, g_step: int) -> int:
        """Critic updates before generator update number ``g_step`` (counted from 0).

        ``optim.n_dis_boost`` raises it for the first ``first`` generator updates and on every
        ``every``-th one (Gulrajani et al.'s WGAN-GP schedule, used by Mullery & Whelan).
        """
        boost = self.cfg.optim.get("n_dis_boost")
        if boost is not None and (g_step < boost.first or g_step % boost.every == 0):
            return boost.n_dis
        return self.cfg.optim.n_dis

    def discriminator_update(self, real: torch.Tensor, opt) -> dict:
        """One critic update (noise of step ``d_step``, then ``d_step`` + 1): loss and penalty, backward, ``opt``'s
        step, layer projections and the normalization's post-update hook. Also usable without a Trainer
        (``scripts/bench_norms.py`` times exactly this)."""
        loss, penalty, d_real, d_fake = self.discriminator_loss(real, self.d_step)
        opt.zero_grad(set_to_none=True)
        self._backward(loss, "discriminator")
        opt.step()
        self._project("discriminator")
        self.norm.after_discriminator_update(self.discriminator, self.d_step, self.rng("normalization", self.d_step))
        self.d_step += 1
        # raw tensors: reduced to scalars only on logging steps (no per-step host sync)
        outputs = {"loss/d": loss.detach(), "d_out/real": d_real.detach(), "d_out/fake": d_fake.detach()}
        if penalty is not None:
            outputs["loss/d_penalty"] = penalty.detach()
        return outputs

    def _generator_update(self, opt) -> dict:
        z = self.sample_latent(self.cfg.train.g_batch_size // self.world_size, "generator", self.g_step)
        with self.toggled_optimizer(opt):  # D's parameters get no gradients
            fake = self.trained("generator")(z)
            if self.loss.reads_embeddings:  # EBGAN's pulling-away term on the critic's encoding of G(z)
                d_fake, embeddings = map(_loss_precision, self.discriminator.energies_and_embeddings(fake))
                loss = self.loss.generator(d_fake, self._gathered_over_ranks(embeddings))
            else:
                d_fake = _loss_precision(self.discriminator(fake))
                loss = self.loss.generator(d_fake)
            opt.zero_grad(set_to_none=True)
            self._backward(loss, "generator")
            opt.step()
        self._project("generator")
        return {"loss/g": loss.detach(), "d_out/generated": d_fake.detach()}

    def _backward(self, loss: torch.Tensor, network: str) -> None:
        """``network``'s backward pass, through the strategy's when there is a Trainer (precision scaling, DDP)."""
        if self._trainer is None:
            loss.backward()
            return
        if isinstance(self.trainer.precision_plugin, PerNetworkLossScaling):
            self.trainer.precision_plugin.select(network)  # its loss scale, for this backward and the next step
        self.manual_backward(loss)

    def _project(self, network: str) -> None:
        for layer in self._projected[network]:
            layer.project_after_step_()

    def _schedulers(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # -- logging -------------------------------------------------------------------------------
    def _mean_over_ranks(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of per-rank means of equal-sized batches: the global batch's mean."""
        return self.trainer.strategy.reduce(values, reduce_op="mean") if self.world_size > 1 else values

    def _gathered_over_ranks(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's rows, with the gradient flowing back to each rank's own: a term over pairs of samples (EBGAN's
        pulling-away term) then sees the global batch, as in one process (DDP's gradient average undoes the sum that
        the gather's backward makes over the ranks' identical terms)."""
        if self.world_size == 1:
            return rows
        return torch.cat(all_gather(rows))

    def _log_scalars(self, outputs: dict) -> None:
        opt_g, opt_d = self.optimizers()
        means = [value.mean() for value in outputs.values()]
        # with them, whether a weight of either network is NaN or infinite on some rank: one transfer for both
        means = self._mean_over_ranks(torch.stack([*means, self._non_finite_weights().to(means[0].dtype)]))
        scalars = dict(zip(outputs, means))  # losses and critic outputs of the global batch, logged once by rank 0
        scalars["lr/g"] = opt_g.param_groups[0]["lr"]
        scalars["lr/d"] = opt_d.param_groups[0]["lr"]
        scalars["grad_norm/g"] = _gradient_norm(self.generator)  # of the last generator update
        scalars["grad_norm/d"] = _gradient_norm(self.discriminator)  # of the last critic update
        seconds, updates = self._critic_timing
        if updates:  # wall time of one critic update (loss, backward, step, normalization), this rank's
            scalars["time/critic_update_ms"] = 1000 * seconds / updates
        self._critic_timing = [0.0, 0]
        scalars.update(self.loss.logged())  # e.g. BEGAN's k_t and M_global
        for layer, scale in normalizing_constants(self.discriminator).items():
            scalars[f"norm_scale/{layer}"] = scale
        for layer, scale in normalizing_constants(self.generator).items():
            scalars[f"norm_scale/generator/{layer}"] = scale
        self.last_metrics = {name: float(value) for name, value in scalars.items()}
        for logger in self.loggers:
            logger.log_metrics(self.last_metrics, step=self.g_step)
        self._flush_gaps()
        # checked on logging steps (the values are on the host there anyway) and before every checkpoint
        diverged = [f"{name} is {self.last_metrics[name]}" for name in ("loss/d", "loss/g")
                    if not math.isfinite(self.last_metrics[name])]
        if diverged or means[-1] > 0:
            quantity = diverged[0] if diverged else self._non_finite_weight()
            raise TrainingDivergedError(self._divergence_message(quantity))

    def _flush_gaps(self) -> None:
        """Log ``d_out/real_minus_fake`` of every generator step since the last flush (one host transfer): with
        loss=wgan, the critic's Wasserstein estimate without the penalty (Mullery & Whelan's critic-loss curve)."""
        if not self._pending_gaps:
            return
        values = self._mean_over_ranks(torch.stack([gap for _, gap in self._pending_gaps])).tolist()
        for (g_step, _), value in zip(self._pending_gaps, values):
            for logger in self.loggers:
                logger.log_metrics({"d_out/real_minus_fake": value}, step=g_step)
        self._pending_gaps.clear()

    # -- divergence --------------------------------------------------------------------------
    def _weights(self):
        """(name, tensor) of every floating-point parameter and buffer of both networks (e.g. SN's u, BN's running
        variance, which only the generator's eval-mode samples use)."""
        for network in ("generator", "discriminator"):
            module = getattr(self, network)
            for name, tensor in itertools.chain(module.named_parameters(), module.named_buffers()):
                if tensor.is_floating_point():
                    yield f"{network} weight {name}", tensor

    def _non_finite_weights(self) -> torch.Tensor:
        """1.0 if a weight of either network holds a NaN or an infinity, else 0.0: on the device, no host sync."""
        return (~torch.stack([tensor.isfinite().all() for _, tensor in self._weights()]).all()).float()

    def _non_finite_weight(self) -> str:
        """Which weight is not finite, and its first such value (on the error path only)."""
        for name, tensor in self._weights():
            values = tensor.detach()[~tensor.detach().isfinite()]
            if values.numel():
                return f"{name} holds {values[0].item()}"
        return "a weight on another process is not finite"

    def _divergence_message(self, quantity: str) -> str:
        # the newest checkpoint this run wrote (usually last.ckpt), else the one it resumed from, if any
        good = newest_checkpoint(*checkpoint_folders(self.trainer)) if self._saved_at is not None else None
        step = self._saved_at
        if good is None:
            good, step = (Path(self.cfg.ckpt_path), self.resumed_at) if self.cfg.ckpt_path else (None, None)
        if good is None:
            kept = f"no checkpoint was written before it (train.checkpoint_every={self.cfg.train.checkpoint_every})"
        else:
            kept = (f"the last good checkpoint, {good} (generator step {step}), is kept: resume from it with "
                    f"ckpt_path={good} once the setting that diverged is changed")
        return f"Training diverged at generator step {self.g_step}: {quantity}; {kept}."

    # -- checkpoint --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # a checkpoint with a NaN weight is never written: it would replace last.ckpt, the last good state
        if self._mean_over_ranks(self._non_finite_weights()) > 0:
            raise TrainingDivergedError(self._divergence_message(self._non_finite_weight()))
        self._flush_gaps()  # a run resumed from here logs from the next step on
        checkpoint["gan_counters"] = {"g_step": self.g_step, "d_step": self.d_step,
                                      "d_steps_since_g": self.d_steps_since_g}
        self._saved_at = self.g_step

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        counters = checkpoint.get("gan_counters")
        if counters is None:
            raise CheckpointError("The checkpoint has no generator/discriminator step counters; "
                                  "it was not written by sngan_repro.train.")
        self.g_step, self.d_step = counters["g_step"], counters["d_step"]
        self.d_steps_since_g = counters["d_steps_since_g"]
        self.resumed_at = self.g_step
