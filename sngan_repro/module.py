"""The Lightning module: manual optimization alternating n_dis discriminator updates and one
generator update.

Run length, logging and checkpoints count generator updates (``g_step``), as the papers do;
Lightning's ``global_step`` counts every optimizer step of both networks. All training state
(counters, optimizer and scheduler states, normalization buffers) is in the checkpoint, and
every noise draw comes from a generator seeded by (seed, stream, step) (``sngan_repro.noise``),
so a resumed run draws exactly what an uninterrupted one would.

Under DDP (``sngan_repro.distributed``) ``train.batch_size`` is the global batch. Every rank makes
the draw of the whole global batch and keeps its rows, the rows of the real batch it holds
(``data.base.ResumableSampler``), so the ranks together compute what one process computes on the
global batch, whatever the number of ranks.
"""

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from .checkpointing import check_checkpoint, checkpoint_folders
from .distributed import Ranks, rank_share
from .divergence import DivergenceGuard
from .errors import CheckpointError, SnganReproError
from .instantiate import instantiate_checked
from .losses import GANLoss, at_loss_precision
from .models import build_models
from .nn import projected_layers
from .noise import NoiseStreams, RankShare
from .normalizations import build_normalization
from .precision import PerNetworkLossScaling, lightning_backward_is_plain
from .training_scalars import TrainingScalars, synchronized_clock


class GAN(pl.LightningModule):
    """A GAN trained as a composed config says (see ``sngan_repro.compose``).

    ``cfg`` is kept as a plain dict in the checkpoint's hyper-parameters, so a checkpoint
    rebuilds its own module with ``GAN.load_from_checkpoint(path)`` (``load_gan`` adds the checks).
    """

    def __init__(self, cfg: dict):
        super().__init__()
        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
        self.save_hyperparameters({"cfg": cfg}, logger=False)  # the HParams tab gets a summary (callbacks/hparams.py)
        self.cfg = OmegaConf.create(cfg)
        self.automatic_optimization = False
        train, optim = self.cfg.train, self.cfg.optim
        # settings read every update, as plain values (an OmegaConf lookup costs microseconds, and a small model's
        # update only milliseconds)
        self.steps = train.steps  # the run's length in generator updates
        self.log_every, self.g_batch_size = train.log_every, train.g_batch_size
        self.critic_updates = optim.n_dis
        self.critic_updates_boost = OmegaConf.to_container(optim.n_dis_boost) if optim.get("n_dis_boost") else None
        self.plateau_every = optim.plateau.every if optim.lr_decay == "plateau" else 0

        self.norm = build_normalization(self.cfg)
        self.generator, self.discriminator = build_models(self.cfg, norm=self.norm)
        # layers that keep their parameters in a set after every update (nn.protocols), collected once
        self._projected = {"generator": projected_layers(self.generator),
                           "discriminator": projected_layers(self.discriminator)}
        # accelerations (train.channels_last, train.compile): the same math in another memory layout or compiled
        self.memory_format = torch.channels_last if train.get("channels_last") else torch.contiguous_format
        for network in (self.generator, self.discriminator):
            if self.memory_format == torch.channels_last:
                network.to(memory_format=torch.channels_last)
            if train.get("compile"):
                network.compile()  # in place: the state dict, and so every checkpoint, stays the same
        self.loss: GANLoss = instantiate_checked(self.cfg.loss)
        self.output_range = tuple(self.cfg.arch.output_range)
        self.latent_dim = self.cfg.arch.latent_dim
        self.noise = NoiseStreams(self.cfg.seed, self.latent_dim, self.cfg.arch.latent_distribution)
        # the codes of the sample grids: the same all run long, on every rank
        self.register_buffer("fixed_z", self.latent_draw(train.num_samples, "fixed", 0))
        # each network's DistributedDataParallel wrapper under DDP, set by sngan_repro.distributed.GANStrategy
        # (a plain dict: the wrappers are not submodules, so checkpoints are the same with and without DDP)
        self.distributed_wrappers: dict[str, torch.nn.Module] = {}
        self.divergence = DivergenceGuard({"generator": self.generator, "discriminator": self.discriminator},
                                          train.checkpoint_every, self.cfg.ckpt_path, self._checkpoint_folders)

        self.g_step = 0  # generator updates done
        self.d_step = 0  # discriminator updates done
        self.d_steps_since_g = 0
        self.generator_stepped = False  # did the last training_step end with a generator update
        self.last_metrics: dict[str, float] = {}  # scalars of the last logging step
        self.scalars = TrainingScalars()
        self.plain_backward = True  # loss.backward() rather than the strategy's (decided at the fit's start)

    @property
    def world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    @property
    def ranks(self) -> Ranks:
        """This process among the ranks, and the collectives over them (one process without a Trainer)."""
        if self._trainer is None:
            return Ranks()
        return Ranks(self.global_rank, self.world_size)

    def _checkpoint_folders(self) -> list[str]:
        return checkpoint_folders(self.trainer)

    @property
    def resumed_at(self) -> int | None:
        """The generator step of the checkpoint this run resumed from (None: a fresh run)."""
        return self.divergence.resumed_at

    # -- noise -------------------------------------------------------------------------------
    def rng(self, stream: str, step: int) -> torch.Generator:
        """A generator on this module's device seeded by (seed, stream, step) only: the same on every rank."""
        return self.noise.rng(stream, step, self.device)

    def latent_draw(self, n: int, stream: str, step: int) -> torch.Tensor:
        """n codes from the latent prior, a function of (seed, stream, step) only (the same on every rank)."""
        return self.noise.latent(n, stream, step, self.device, self.dtype)

    def sample_latent(self, n: int, stream: str, step: int) -> torch.Tensor:
        """This rank's n codes: its rows of the draw for all ranks' n * world_size."""
        return self.ranks.own_rows(self.latent_draw(n * self.world_size, stream, step))

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
        if optim.lr_decay == "plateau":  # stepped every plateau.every G updates with the loss's convergence measure
            plateau = optim.plateau
            schedulers = [ReduceLROnPlateau(opt, factor=plateau.factor, patience=0, threshold=0.0,
                                            min_lr=plateau.min_lr) for opt in (opt_g, opt_d)]
            return [opt_g, opt_d], schedulers
        total = self.steps  # linear decay to 0 over the run, stepped once per G update
        schedulers = [LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total)) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    def on_fit_start(self) -> None:
        self.plain_backward = lightning_backward_is_plain(self.trainer)

    def on_train_start(self) -> None:
        if self.g_step >= self.steps:  # resumed from a run that already reached train.steps
            self.trainer.should_stop = True

    def _logs_at(self, g_step: int) -> bool:
        return g_step % self.log_every == 0 or g_step == self.steps

    def training_step(self, real: torch.Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real = real.contiguous(memory_format=self.memory_format)
        timed = self._logs_at(self.g_step + 1)  # the critic updates before a logged generator update are timed
        started = synchronized_clock(self.device) if timed else 0.0
        d_out = self.discriminator_update(real, opt_d)
        if timed:
            self.scalars.add_critic_time(synchronized_clock(self.device) - started)
        self.d_steps_since_g += 1
        self.generator_stepped = self.d_steps_since_g >= self.n_dis(self.g_step)
        if not self.generator_stepped:
            return
        g_out = self._generator_update(opt_g)
        self.loss.after_generator_update(d_out["d_out/real"], g_out["d_out/generated"], self.ranks)
        self.g_step += 1
        self.d_steps_since_g = 0
        self.scalars.add_gap(self.g_step, d_out)
        self._step_schedulers()
        if self._logs_at(self.g_step):
            self._log_scalars({**d_out, **g_out})
        if self.g_step >= self.steps:
            self.trainer.should_stop = True

    def discriminator_loss(self, real: torch.Tensor, step: int):
        """The critic's loss on a real batch and fresh fakes: (total, its normalization's penalty or None, D(x),
        D(G(z)))."""
        z = self.sample_latent(real.shape[0], "discriminator", step)
        with torch.no_grad():
            fake = self.generator(z)
        critic = self.trained("discriminator")
        d_real, d_fake = at_loss_precision(critic(real)), at_loss_precision(critic(fake))
        loss = self.loss.discriminator(d_real, d_fake)
        penalty = self.norm.penalty(critic, real, fake, self.rank_share("penalty", step))
        return (loss if penalty is None else loss + penalty), penalty, d_real, d_fake

    def n_dis(self, g_step: int) -> int:
        """Critic updates before generator update number ``g_step`` (counted from 0).

        ``optim.n_dis_boost`` raises it for the first ``first`` generator updates and on every
        ``every``-th one (Gulrajani et al.'s WGAN-GP schedule, used by Mullery & Whelan).
        """
        boost = self.critic_updates_boost
        if boost is not None and (g_step < boost["first"] or g_step % boost["every"] == 0):
            return boost["n_dis"]
        return self.critic_updates

    def discriminator_update(self, real: torch.Tensor, opt) -> dict:
        """One critic update (noise of step ``d_step``, then ``d_step`` + 1): loss and penalty, backward, ``opt``'s
        step, layer projections and the normalization's post-update hook. Also usable without a Trainer
        (``scripts/bench_norms.py`` times exactly this)."""
        loss, penalty, d_real, d_fake = self.discriminator_loss(real, self.d_step)
        self._descend(opt, loss, "discriminator")
        self.norm.after_discriminator_update(self.discriminator, self.d_step, self.rng("normalization", self.d_step))
        self.d_step += 1
        # raw tensors: reduced to scalars only on logging steps (no per-step host sync)
        outputs = {"loss/d": loss.detach(), "d_out/real": d_real.detach(), "d_out/fake": d_fake.detach()}
        if penalty is not None:
            outputs["loss/d_penalty"] = penalty.detach()
        return outputs

    def _generator_update(self, opt) -> dict:
        share = rank_share("train.g_batch_size", self.g_batch_size, self.world_size)
        z = self.sample_latent(share, "generator", self.g_step)
        with self.toggled_optimizer(opt):  # D's parameters get no gradients
            fake = self.trained("generator")(z)
            loss, d_fake = self.loss.generator_loss(self.discriminator, fake, self.ranks)
            self._descend(opt, loss, "generator")
        return {"loss/g": loss.detach(), "d_out/generated": d_fake.detach()}

    def _backward(self, loss: torch.Tensor, network: str) -> None:
        """``network``'s backward pass, through the strategy's when it does more than ``loss.backward()`` (precision
        scaling, DDP, backward hooks)."""
        if self._trainer is None or self.plain_backward:
            loss.backward()
            return
        if isinstance(self.trainer.precision_plugin, PerNetworkLossScaling):
            self.trainer.precision_plugin.select(network)  # its loss scale, for this backward and the next step
        self.manual_backward(loss)

    def _descend(self, opt, loss: torch.Tensor, network: str) -> None:
        """``network``'s update on ``loss``: its gradients, ``opt``'s step, then the projections of its layers that
        keep their parameters in a set."""
        opt.zero_grad(set_to_none=True)
        self._backward(loss, network)
        opt.step()
        for layer in self._projected[network]:
            layer.project_after_step_()

    def _step_schedulers(self) -> None:
        """After a generator update: the linear decay's step, or, every ``optim.plateau.every`` updates, the plateau
        check of the loss's convergence measure (the same value on every rank: the loss keeps global means)."""
        if not self.plateau_every:
            for scheduler in self._schedulers():
                scheduler.step()
        elif self.g_step % self.plateau_every == 0:
            measure = float(self.loss.convergence)
            for scheduler in self._schedulers():
                scheduler.step(measure)

    def _schedulers(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    # -- logging -------------------------------------------------------------------------------
    def _log_scalars(self, outputs: dict) -> None:
        self.last_metrics, non_finite_weights = self.scalars.collect(
            outputs, self.optimizers(), {"generator": self.generator, "discriminator": self.discriminator}, self.loss,
            self.divergence.non_finite_weights(), self.ranks)
        for logger in self.loggers:
            logger.log_metrics(self.last_metrics, step=self.g_step)
        self.scalars.flush_gaps(self.loggers, self.ranks)
        # checked on logging steps (the values are on the host there anyway) and before every checkpoint
        self.divergence.check_logged(self.g_step, self.last_metrics, non_finite_weights)

    # -- checkpoint --------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.divergence.check_before_saving(self.g_step, float(self.ranks.mean(self.divergence.non_finite_weights())))
        self.scalars.flush_gaps(self.loggers, self.ranks)  # a run resumed from here logs from the next step on
        checkpoint["gan_counters"] = {"g_step": self.g_step, "d_step": self.d_step,
                                      "d_steps_since_g": self.d_steps_since_g}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        counters = checkpoint.get("gan_counters")
        if counters is None:
            raise CheckpointError("The checkpoint has no generator/discriminator step counters; "
                                  "it was not written by sngan_repro.train.")
        self.g_step, self.d_step = counters["g_step"], counters["d_step"]
        self.d_steps_since_g = counters["d_steps_since_g"]
        self.divergence.resumed_at = self.g_step


def chosen_device(name: str) -> torch.device:
    """``device=`` of the evaluate and sample commands: ``auto`` is cuda when there is one, else cpu."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def load_gan(path, device: torch.device | str = "cpu") -> GAN:
    """The trained GAN of a checkpoint written by ``python -m sngan_repro.train``, on ``device`` in eval mode;
    a missing, damaged or foreign file is refused in one sentence (``CheckpointError``)."""
    check_checkpoint(path)
    try:
        module = GAN.load_from_checkpoint(path, map_location=device, weights_only=True)
    except SnganReproError:
        raise
    except Exception as error:  # unpickling / key errors of a foreign or damaged file
        raise CheckpointError(f"ckpt={path} could not be loaded as a sngan_repro checkpoint "
                              f"({type(error).__name__}: {error}).") from error
    return module.to(device).eval()
