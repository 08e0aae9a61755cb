"""Inception Score and FID of a generator, from one pass of a feature extractor over its samples.

The extractor is Inception-v3 (``metrics.inception.load_inception``) for the papers' numbers, or
the digits classifier offline (names prefixed ``digits_``: not Inception numbers). Samples come
from fixed codes (the ``metrics`` noise stream), the generator in eval mode, outputs truncated to
uint8 as the papers' evaluation code did; under DDP every rank generates its share and all ranks
gather every feature, so each computes the numbers of a single process.
"""

import math
from collections.abc import Callable, Iterator

import torch

from ..data.pixels import to_uint8_truncated
from .base import Metric, MetricSettingError, MetricSetup, require_count
from .scores import (
    count_tag,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_distance,
    real_features,
    real_statistics,
)


def fixed_samples(gan, count: int, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[torch.Tensor]:
    """The uint8 samples the metrics score: chunk c of ``batch_size`` (the last one shorter) from the codes of
    (metrics stream, step c), the generator as ``gan`` is (eval mode for the metrics), outputs clamped and truncated
    to uint8; chunks ``rank``, ``rank + world``, ... (one process: all of them, in order)."""
    chunks = [min(batch_size, count - start) for start in range(0, count, batch_size)]
    for chunk in range(rank, len(chunks), world):
        yield to_uint8_truncated(gan.generate(gan.latent_draw(chunks[chunk], "metrics", chunk)), gan.output_range)


def _dataset_key(dataset: dict) -> dict:
    """What identifies a run's real images for the statistics cache (not how they are read)."""
    return {key: value for key, value in dataset.items() if key not in ("num_workers", "download")}


class SampleQuality(Metric):
    """IS of ``inception_score.samples`` samples in ``inception_score.splits`` splits and/or FID of ``fid.samples``
    samples against ``fid.real`` training images (fewer if the training set is smaller), in the feature space
    of ``extractor`` (a function of the device returning the extractor, e.g. a partial of ``load_inception``)."""

    def __init__(self, extractor: Callable, cache_dir: str, every: int = 0, inception_score: dict | None = None,
                 fid: dict | None = None, kid: dict | None = None, batch_size: int = 100, prefix: str = ""):
        super().__init__(every)
        if not inception_score and not fid and not kid:
            raise MetricSettingError("inception_score, fid and kid are all null; give at least one, e.g. "
                                     "fid={samples: 5000, real: 10000}.")
        self.is_samples = self.is_splits = self.fid_samples = self.fid_real = 0
        self.kid_samples = self.kid_real = self.kid_subsets = self.kid_subset_size = 0
        if kid:  # Binkowski et al. 2018: 100 subsets of 1000 (torch-fidelity's defaults)
            self.kid_samples, self.kid_real = kid.get("samples"), kid.get("real")
            self.kid_subsets, self.kid_subset_size = kid.get("subsets", 100), kid.get("subset_size", 1000)
            for value, name in ((self.kid_samples, "kid.samples"), (self.kid_real, "kid.real"),
                                (self.kid_subsets, "kid.subsets"), (self.kid_subset_size, "kid.subset_size")):
                require_count(value, name)
            if self.kid_subset_size > min(self.kid_samples, self.kid_real):
                raise MetricSettingError(f"kid.subset_size={self.kid_subset_size} exceeds kid.samples="
                                         f"{self.kid_samples} or kid.real={self.kid_real}; subsets are drawn without "
                                         f"replacement from each side.")
        if inception_score:
            self.is_samples, self.is_splits = inception_score.get("samples"), inception_score.get("splits", 1)
            require_count(self.is_samples, "inception_score.samples")
            require_count(self.is_splits, "inception_score.splits")
            if self.is_splits > self.is_samples:
                raise MetricSettingError(f"inception_score.splits={self.is_splits} exceeds its "
                                         f"{self.is_samples} samples.")
        if fid:
            self.fid_samples, self.fid_real = fid.get("samples"), fid.get("real")
            require_count(self.fid_samples, "fid.samples")
            require_count(self.fid_real, "fid.real")
        require_count(batch_size, "batch_size")
        self.load_extractor, self.cache_dir, self.batch_size, self.prefix = extractor, cache_dir, batch_size, prefix
        self.extractor = None
        self.real: dict | None = None  # the real images' FID statistics, after prepare
        self.real_kid: torch.Tensor | None = None  # the real images' features for KID, after prepare

    def _names(self) -> dict[str, str]:
        names = {}
        if self.is_samples:
            split = "split" if self.is_splits == 1 else "splits"
            names["is"] = f"{self.prefix}is/{count_tag(self.is_samples)}_{self.is_splits}{split}"
        if self.fid_samples:
            real = count_tag(self.real["count"] if self.real else self.fid_real)
            names["fid"] = f"{self.prefix}fid/{count_tag(self.fid_samples)}_vs_train{real}"
        if self.kid_samples:
            real = count_tag(len(self.real_kid) if self.real_kid is not None else self.kid_real)
            names["kid"] = (f"{self.prefix}kid/{count_tag(self.kid_samples)}_vs_train{real}_"
                            f"{self.kid_subsets}x{count_tag(self.kid_subset_size)}")
        return names

    def names(self) -> list[str]:
        names, listed = self._names(), []
        if "is" in names:
            listed += [names["is"], names["is"] + "_std"]
        if "fid" in names:
            listed.append(names["fid"])
        if "kid" in names:
            listed += [names["kid"], names["kid"] + "_std"]
        return listed

    def protocols(self) -> dict[str, str]:
        names, protocol = self._names(), {}
        extractor = self.extractor.name if self.extractor is not None else "the configured extractor"
        sampling = "generator in eval mode, outputs clamped and truncated to uint8"
        if "is" in names:
            protocol[names["is"]] = (f"Inception score with {extractor}: {self.is_samples} samples, "
                                     f"mean over {self.is_splits} split(s) (torch-fidelity's formula), {sampling}")
            protocol[names["is"] + "_std"] = "standard deviation over the splits of " + names["is"]
        if "fid" in names:
            protocol[names["fid"]] = (f"Frechet distance in {extractor} pool features: {self.fid_samples} samples "
                                      f"vs {self.real['count'] if self.real else self.fid_real} training images, "
                                      f"{sampling}")
        if "kid" in names:
            real = len(self.real_kid) if self.real_kid is not None else self.kid_real
            protocol[names["kid"]] = (f"Kernel distance (unbiased MMD^2, kernel (x.y/d + 1)^3, Binkowski et al. "
                                      f"2018) in {extractor} pool features: mean over {self.kid_subsets} subsets of "
                                      f"{self.kid_subset_size} of {self.kid_samples} samples and of {real} training "
                                      f"images, {sampling}")
            protocol[names["kid"] + "_std"] = "standard deviation over the subsets of " + names["kid"]
        return protocol

    def prepare(self, setup: MetricSetup) -> None:
        if self.extractor is None:
            self.extractor = self.load_extractor(device=setup.device)
        self.extractor.to(setup.device)
        if self.fid_samples:
            self.real = real_statistics(setup.datamodule, self.fid_real, self.extractor, self.cache_dir,
                                        self.batch_size, setup.device, _dataset_key(setup.dataset))
        if self.kid_samples:
            self.real_kid = real_features(setup.datamodule, self.kid_real, self.extractor, self.cache_dir,
                                          self.batch_size, setup.device, _dataset_key(setup.dataset))
            if len(self.real_kid) < self.kid_subset_size:
                raise MetricSettingError(f"kid.subset_size={self.kid_subset_size} exceeds the {len(self.real_kid)} "
                                         f"training images of the dataset.")

    @torch.no_grad()
    def generated_features(self, gan, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of ``count`` samples from fixed codes, in the same order whatever the number of ranks.

        The samples come in chunks of ``batch_size``, chunk c from the codes of (metrics stream, step c); under DDP
        rank r generates chunks r, r + world, ... and every rank gathers all of them, so the features, and the
        numbers computed from them, are those of a single process.
        """
        world, rank = gan.world_size, gan.global_rank
        chunks = [(start, min(self.batch_size, count - start)) for start in range(0, count, self.batch_size)]
        pools, logits = [], []
        for images in fixed_samples(gan, count, self.batch_size, rank, world):
            pool, logit = self.extractor(images)
            pools.append(pool)
            logits.append(logit)
        pool, logit = torch.cat(pools), torch.cat(logits)
        if world == 1:
            return pool.cpu(), logit.cpu()
        # all_gather needs one shape on every rank: pad each rank's chunks to ceil(chunks / world) full chunks
        rows = math.ceil(len(chunks) / world) * self.batch_size
        pool, logit = (gan.all_gather(torch.nn.functional.pad(t, (0, 0, 0, rows - t.shape[0]))).cpu()
                       for t in (pool, logit))
        order = [(chunk % world, chunk // world * self.batch_size, size) for chunk, (_, size) in enumerate(chunks)]
        return (torch.cat([gathered[r, offset : offset + size] for r, offset, size in order])
                for gathered in (pool, logit))

    def compute(self, gan) -> dict[str, float]:
        # one pass of the extractor: IS, FID and KID take the first of the same samples' features
        pool, logits = self.generated_features(gan, max(self.is_samples, self.fid_samples, self.kid_samples))
        names, results = self._names(), {}
        if self.is_samples:
            mean, std = inception_score(logits[: self.is_samples], self.is_splits)
            results[names["is"]], results[names["is"] + "_std"] = mean, std
        if self.fid_samples:
            results[names["fid"]] = frechet_distance(feature_statistics(pool[: self.fid_samples]), self.real)
        if self.kid_samples:
            mean, std = kernel_distance(pool[: self.kid_samples], self.real_kid, self.kid_subsets,
                                        self.kid_subset_size)
            results[names["kid"]], results[names["kid"] + "_std"] = mean, std
        return results
