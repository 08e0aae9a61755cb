"""Inception Score, FID, KID and precision/recall of a generator, from one pass of a feature extractor over its
samples.

The extractor is Inception-v3 (``metrics.inception.load_inception``) for the papers' numbers, VGG-16
(``metrics.vgg.load_vgg16``, names prefixed ``vgg16_``) for precision/recall as Kynkaanniemi et al. measure it, or
the digits classifier offline (names prefixed ``digits_``: not Inception numbers). Samples come from fixed codes
(the ``metrics`` noise stream), the generator in eval mode, outputs truncated to uint8 as the papers' evaluation
code did; under DDP every rank generates its share and all ranks gather every feature, so each computes the numbers
of a single process. Instead of a generator, ``compute`` also scores an ``ImageSet`` (images from elsewhere).
"""

import math
from collections.abc import Callable, Iterator

import torch

from ..data.image_set import ImageSet
from ..data.pixels import to_uint8_truncated
from .base import Metric, MetricSettingError, MetricSetup, require_count
from .scores import (
    KID_COEF0,
    KID_DEGREE,
    count_tag,
    extract,
    feature_statistics,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall,
    real_features,
    real_statistics,
)

GENERATED = "generator in eval mode, outputs clamped and truncated to uint8"
# each score's settings and their defaults (None: required). KID: Binkowski et al. 2018, 100 subsets of 1000
# (torch-fidelity's defaults); precision/recall: Kynkaanniemi et al. 2019, Sec. 3, k = 3
SETTINGS = {
    "inception_score": {"samples": None, "splits": 1},
    "fid": {"samples": None, "real": None},
    "kid": {"samples": None, "real": None, "subsets": 100, "subset_size": 1000},
    "precision_recall": {"samples": None, "real": None, "k": 3},
}


def fixed_samples(gan, count: int, batch_size: int, rank: int = 0, world: int = 1) -> Iterator[torch.Tensor]:
    """The uint8 samples the metrics score: chunk c of ``batch_size`` (the last one shorter) from the codes of
    (metrics stream, step c), the generator as ``gan`` is (eval mode for the metrics), outputs clamped and truncated
    to uint8; chunks ``rank``, ``rank + world``, ... (one process: all of them, in order)."""
    chunks = [min(batch_size, count - start) for start in range(0, count, batch_size)]
    for chunk in range(rank, len(chunks), world):
        yield to_uint8_truncated(gan.generate(gan.latent_draw(chunks[chunk], "metrics", chunk)), gan.output_range)


def gather_chunks(rows: torch.Tensor, count: int, batch_size: int, world: int, all_gather: Callable) -> torch.Tensor:
    """All ranks' ``rows`` in the order of one process, on the CPU: the rows of ``count`` items in chunks of
    ``batch_size`` of which rank r holds chunks r, r + world, ... (``fixed_samples``), gathered with ``all_gather`` (a
    strategy's or Fabric's, (world, ...) from every rank's tensor)."""
    chunks = [min(batch_size, count - start) for start in range(0, count, batch_size)]
    # all_gather needs one shape on every rank: pad each rank's chunks to ceil(chunks / world) full chunks
    padded = math.ceil(len(chunks) / world) * batch_size
    every = all_gather(torch.nn.functional.pad(rows, (0,) * (2 * rows.dim() - 1) + (padded - rows.shape[0],))).cpu()
    return torch.cat([every[chunk % world, chunk // world * batch_size :][:size] for chunk, size in enumerate(chunks)])


def _dataset_key(dataset: dict) -> dict:
    """What identifies a run's real images for the statistics cache (not how they are read)."""
    return {key: value for key, value in dataset.items() if key not in ("num_workers", "download")}


def _settings(score: str, node) -> dict | None:
    """A score's settings with their defaults (None when the score is off), each checked to be a count."""
    if not node:
        return None
    accepted = SETTINGS[score]
    if not hasattr(node, "items"):  # e.g. the shell's brace expansion of an unquoted {samples: ..., real: ...}
        example = ", ".join(f"{field}: {default or 1000}" for field, default in accepted.items())
        raise MetricSettingError(f"{score}={node!r} is not a mapping of its settings; give e.g. {score}={{{example}}} "
                                 f"(quoted in the shell).")
    unknown = sorted(set(node) - set(accepted))
    if unknown:
        raise MetricSettingError(f"{score}.{unknown[0]} is not a setting of {score}; accepted: "
                                 f"{', '.join(accepted)}.")
    values = {field: node.get(field, default) for field, default in accepted.items()}
    for field, value in values.items():
        require_count(value, f"{score}.{field}")
    return values


class SampleQuality(Metric):
    """In the feature space of ``extractor`` (a function of the device returning the extractor, e.g. a partial of
    ``load_inception``), from one pass over the largest number of samples any of them takes:

    - ``inception_score``: IS of ``samples`` samples in ``splits`` splits;
    - ``fid``: FID of ``samples`` samples against ``real`` training images (fewer if the training set is smaller);
    - ``kid``: KID, the unbiased MMD^2 with the cubic polynomial kernel, mean and std over ``subsets`` subsets of
      ``subset_size`` of ``samples`` samples and of ``real`` training images;
    - ``precision_recall``: improved precision and recall of ``samples`` samples against ``real`` training images
      with ``k``-nearest-neighbour balls.
    """

    def __init__(self, extractor: Callable, cache_dir: str, every: int = 0, inception_score: dict | None = None,
                 fid: dict | None = None, kid: dict | None = None, precision_recall: dict | None = None,
                 batch_size: int = 100, prefix: str = ""):
        super().__init__(every)
        given = {"inception_score": inception_score, "fid": fid, "kid": kid, "precision_recall": precision_recall}
        self.scores = {score: settings for score, node in given.items() if (settings := _settings(score, node))}
        if not self.scores:
            raise MetricSettingError("inception_score, fid, kid and precision_recall are all null; give at least one, "
                                     "e.g. fid={samples: 5000, real: 10000}.")
        splits = self.scores.get("inception_score", {}).get("splits", 0)
        if splits > self.samples("inception_score"):
            raise MetricSettingError(f"inception_score.splits={splits} exceeds its {self.samples('inception_score')} "
                                     f"samples.")
        if "kid" in self.scores:
            kid = self.scores["kid"]
            if kid["subset_size"] > min(kid["samples"], kid["real"]):
                raise MetricSettingError(f"kid.subset_size={kid['subset_size']} exceeds kid.samples={kid['samples']} "
                                         f"or kid.real={kid['real']}; subsets are drawn without replacement from each "
                                         f"side.")
        require_count(batch_size, "batch_size")
        self.load_extractor, self.cache_dir, self.batch_size, self.prefix = extractor, cache_dir, batch_size, prefix
        self.extractor, self.device = None, None
        self.real_statistics: dict | None = None  # FID's statistics of the real images, after prepare
        self.real_features: dict[int, torch.Tensor] = {}  # {count: real features} for KID and precision/recall
        self.reference: ImageSet | None = None  # the real side when it is not the run's dataset
        self.scored: ImageSet | None = None  # the generated side when it is not a generator, after compute

    def samples(self, score: str) -> int:
        return self.scores[score]["samples"] if score in self.scores else 0

    def generated_images_needed(self) -> int:
        return max(settings["samples"] for settings in self.scores.values())

    def _real_count(self, score: str) -> int:
        """The real images a score compares with: its setting until prepared, then those there are."""
        wanted = self.scores[score]["real"]
        if score == "fid":
            return self.real_statistics["count"] if self.real_statistics else wanted
        features = self.real_features.get(wanted)
        return len(features) if features is not None else wanted

    def _names(self) -> dict[str, str]:
        names, real_side = {}, "train" if self.reference is None else "ref"
        vs = {score: f"{count_tag(self.samples(score))}_vs_{real_side}{count_tag(self._real_count(score))}"
              for score in self.scores if score != "inception_score"}
        if "inception_score" in self.scores:
            splits = self.scores["inception_score"]["splits"]
            names["is"] = f"is/{count_tag(self.samples('inception_score'))}_{splits}split{'s' * (splits > 1)}"
        if "fid" in self.scores:
            names["fid"] = f"fid/{vs['fid']}"
        if "kid" in self.scores:
            kid = self.scores["kid"]
            names["kid"] = f"kid/{vs['kid']}_{kid['subsets']}x{count_tag(kid['subset_size'])}_poly{KID_DEGREE}"
        if "precision_recall" in self.scores:
            k = self.scores["precision_recall"]["k"]
            names["precision"], names["recall"] = (f"{kind}/{vs['precision_recall']}_k{k}"
                                                   for kind in ("precision", "recall"))
        return {score: self.prefix + name for score, name in names.items()}

    def names(self) -> list[str]:
        names = self._names()
        with_std = {"is", "kid"}
        return [listed for score, name in names.items() for listed in ([name, name + "_std"] if score in with_std
                                                                          else [name])]

    def protocols(self) -> dict[str, str]:
        names, protocol = self._names(), {}
        extractor = self.extractor.name if self.extractor is not None else "the configured extractor"

        def sides(score: str) -> str:
            generated = (f"{self.samples(score)} samples, {GENERATED}" if self.scored is None
                         else self.scored.describe(self.samples(score)))
            real = (f"{self._real_count(score)} training images" if self.reference is None
                    else f"the reference, {self.reference.describe(self._real_count(score))}")
            return f"{generated}; vs {real}"

        if "is" in names:
            splits, samples = self.scores["inception_score"]["splits"], self.samples("inception_score")
            generated = f"{samples} samples, {GENERATED}" if self.scored is None else self.scored.describe(samples)
            protocol[names["is"]] = (f"Inception score with {extractor}: mean over {splits} split(s) (torch-fidelity's "
                                     f"formula) of {generated}")
            protocol[names["is"] + "_std"] = "standard deviation over the splits of " + names["is"]
        if "fid" in names:
            protocol[names["fid"]] = f"Frechet distance in {extractor} features: {sides('fid')}"
        if "kid" in names:
            kid = self.scores["kid"]
            protocol[names["kid"]] = (f"Kernel distance (unbiased MMD^2, kernel (x.y/d + {KID_COEF0:g})^{KID_DEGREE}, "
                                      f"Binkowski et al. 2018) in {extractor} features, mean over {kid['subsets']} "
                                      f"subsets of {kid['subset_size']} of each side: {sides('kid')}")
            protocol[names["kid"] + "_std"] = "standard deviation over the subsets of " + names["kid"]
        if "precision" in names:
            k = self.scores["precision_recall"]["k"]
            for kind, fraction in (("precision", "samples inside the real images'"),
                                   ("recall", "real images inside the samples'")):
                protocol[names[kind]] = (f"Improved {kind} (Kynkaanniemi et al. 2019): the fraction of {fraction} "
                                         f"k={k} nearest-neighbour balls in {extractor} features: "
                                         f"{sides('precision_recall')}")
        return protocol

    def prepare(self, setup: MetricSetup) -> None:
        if self.extractor is None:
            self.extractor = self.load_extractor(device=setup.device)
        self.extractor.to(setup.device)
        self.device = setup.device  # where the images go: a generator's samples are there, an ImageSet's on the CPU
        if "inception_score" in self.scores and not getattr(self.extractor, "gives_logits", True):
            raise MetricSettingError(f"inception_score needs class logits, which {self.extractor.name} does not give; "
                                     f"compute it with Inception.")
        real = setup.datamodule
        self.reference = real if isinstance(real, ImageSet) else None
        description = ({"images": real.name, "digest": real.digest} if self.reference is not None
                       else _dataset_key(setup.dataset))
        cached = (self.cache_dir, self.batch_size, setup.device, description)
        if "fid" in self.scores:
            self.real_statistics = real_statistics(real, self.scores["fid"]["real"], self.extractor, *cached)
        for score in ("kid", "precision_recall"):
            if score in self.scores:
                count = self.scores[score]["real"]
                if count not in self.real_features:  # KID and precision/recall with the same count share them
                    self.real_features[count] = real_features(real, count, self.extractor, *cached)
        if "kid" in self.scores and self._real_count("kid") < self.scores["kid"]["subset_size"]:
            raise MetricSettingError(f"kid.subset_size={self.scores['kid']['subset_size']} exceeds the "
                                     f"{self._real_count('kid')} real images.")

    @torch.no_grad()
    def generated_features(self, source, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and logits (None if the extractor gives none) of ``count`` images of ``source``: samples of a
        generator from fixed codes, in the same order whatever the number of ranks, or an ``ImageSet``'s first.

        The samples come in chunks of ``batch_size``, chunk c from the codes of (metrics stream, step c); under DDP
        rank r generates chunks r, r + world, ... and every rank gathers all of them, so the features, and the
        numbers computed from them, are those of a single process.
        """
        if isinstance(source, ImageSet):
            world, rank, batches = 1, 0, source.batches(count, self.batch_size)
        else:
            world, rank = source.world_size, source.global_rank
            batches = fixed_samples(source, count, self.batch_size, rank, world)
        pool, logit = extract(self.extractor, batches, self.device, on_cpu=world == 1)
        if world == 1:
            return pool, logit
        return (gather_chunks(pool, count, self.batch_size, world, source.all_gather),
                None if logit is None else gather_chunks(logit, count, self.batch_size, world, source.all_gather))

    def compute(self, source) -> dict[str, float]:
        """The scores of ``source``: a ``sngan_repro.module.GAN`` (its generator's samples) or an ``ImageSet``."""
        self.scored = source if isinstance(source, ImageSet) else None
        # one pass of the extractor: every score takes the first of the same samples' features
        pool, logits = self.generated_features(source, self.generated_images_needed())
        names, results = self._names(), {}
        if "is" in names:
            results[names["is"]], results[names["is"] + "_std"] = inception_score(
                logits[: self.samples("inception_score")], self.scores["inception_score"]["splits"])
        if "fid" in names:
            results[names["fid"]] = frechet_distance(feature_statistics(pool[: self.samples("fid")]),
                                                     self.real_statistics)
        if "kid" in names:
            kid = self.scores["kid"]
            results[names["kid"]], results[names["kid"] + "_std"] = kernel_distance(
                pool[: kid["samples"]], self.real_features[kid["real"]], kid["subsets"], kid["subset_size"])
        if "precision" in names:
            settings = self.scores["precision_recall"]
            results[names["precision"]], results[names["recall"]] = precision_recall(
                pool[: settings["samples"]], self.real_features[settings["real"]], settings["k"])
        return results
