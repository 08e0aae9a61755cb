"""Sample-quality metrics during training: IS and FID of generated samples every k generator
updates (and before the first), with the protocol in every name, e.g. ``is/5k_1split`` and
``fid/5k_vs_train10k`` (``digits_is/...`` with the digits classifier: not Inception numbers)."""

import math

import torch
from pytorch_lightning.callbacks import Callback

from ..metrics.scores import count_tag, feature_statistics, frechet_distance, inception_score, real_statistics, to_uint8


class SampleQualityMetrics(Callback):
    def __init__(self, extractor, every_n_g_steps: int, cache_dir, dataset_description: dict,
                 is_samples: int = 0, is_splits: int = 1, fid_samples: int = 0, fid_real: int = 0,
                 batch_size: int = 100, prefix: str = ""):
        self.extractor, self.every_n_g_steps, self.cache_dir = extractor, every_n_g_steps, cache_dir
        self.dataset_description, self.batch_size, self.prefix = dataset_description, batch_size, prefix
        self.is_samples, self.is_splits = is_samples, is_splits
        self.fid_samples, self.fid_real = fid_samples, fid_real
        self.real = None
        self.last: dict[str, float] = {}

    def names(self, real_count: int | None = None) -> dict[str, str]:
        """The logged name of each metric, which states its protocol."""
        names = {}
        if self.is_samples:
            split = "split" if self.is_splits == 1 else "splits"
            names["is"] = f"{self.prefix}is/{count_tag(self.is_samples)}_{self.is_splits}{split}"
        if self.fid_samples:
            real = count_tag(real_count or self.fid_real)
            names["fid"] = f"{self.prefix}fid/{count_tag(self.fid_samples)}_vs_train{real}"
        return names

    def setup(self, trainer, pl_module, stage: str) -> None:
        self.extractor.to(pl_module.device)
        if not self.fid_samples:
            return
        # one rank computes (and caches) the real statistics; the others then read the cache
        if trainer.is_global_zero:
            self.real = self._real_statistics(trainer, pl_module)
        trainer.strategy.barrier()
        if self.real is None:
            self.real = self._real_statistics(trainer, pl_module)

    def _real_statistics(self, trainer, pl_module) -> dict:
        return real_statistics(trainer.datamodule, self.fid_real, self.extractor, self.cache_dir, self.batch_size,
                               pl_module.device, self.dataset_description)

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.g_step == 0:
            self.evaluate(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.generator_stepped and pl_module.g_step % self.every_n_g_steps == 0:
            for name, value in self.evaluate(trainer, pl_module).items():
                # for ModelCheckpoint(monitor=...); the loggers got it at the generator step already
                pl_module.log(name, value, logger=False, on_step=True, on_epoch=False)

    @torch.no_grad()
    def generated_features(self, pl_module, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of ``count`` samples from fixed codes, every rank generating its share."""
        world, rank = pl_module.world_size, pl_module.global_rank
        share = math.ceil(count / world)
        pools, logits = [], []
        for chunk, start in enumerate(range(0, share, self.batch_size)):
            z = pl_module.sample_latent(min(self.batch_size, share - start), "metrics", chunk, rank=rank)
            pool, logit = self.extractor(to_uint8(pl_module.generate(z), pl_module.output_range))
            pools.append(pool)
            logits.append(logit)
        pool, logit = torch.cat(pools), torch.cat(logits)
        if world > 1:  # every rank gets every rank's features and computes the same numbers
            pool, logit = pl_module.all_gather(pool).flatten(0, 1), pl_module.all_gather(logit).flatten(0, 1)
        return pool[:count].cpu(), logit[:count].cpu()

    def compute(self, pl_module) -> dict[str, float]:
        """The metrics of the module's generator now: {name: value} (names state the protocol)."""
        pool, logits = self.generated_features(pl_module, max(self.is_samples, self.fid_samples))
        names, results = self.names(self.real["count"] if self.real else None), {}
        if self.is_samples:
            mean, std = inception_score(logits[: self.is_samples], self.is_splits)
            results[names["is"]], results[names["is"] + "_std"] = mean, std
        if self.fid_samples:
            results[names["fid"]] = frechet_distance(feature_statistics(pool[: self.fid_samples]), self.real)
        return results

    def protocols(self) -> dict[str, str]:
        """A sentence per metric name saying how it was measured."""
        names, protocol = self.names(self.real["count"] if self.real else None), {}
        sampling = "generator in eval mode, outputs clamped and truncated to uint8"
        if "is" in names:
            protocol[names["is"]] = (f"Inception score with {self.extractor.name}: {self.is_samples} samples, "
                                     f"mean over {self.is_splits} split(s) (torch-fidelity's formula), {sampling}")
            protocol[names["is"] + "_std"] = "standard deviation over the splits of " + names["is"]
        if "fid" in names:
            protocol[names["fid"]] = (f"Frechet distance in {self.extractor.name} pool features: {self.fid_samples} "
                                      f"samples vs {self.real['count'] if self.real else self.fid_real} training "
                                      f"images, {sampling}")
        return protocol

    def evaluate(self, trainer, pl_module) -> dict[str, float]:
        results = self.last = self.compute(pl_module)
        for logger in trainer.loggers:
            logger.log_metrics(results, step=pl_module.g_step)
        return results
