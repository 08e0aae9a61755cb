"""Inception Score and Fréchet distance from extracted features, and real-data statistics
computed once per (dataset, split, count, extractor) and cached on disk.

The formulas are torch-fidelity's (``isc_features_to_metric``: exp(E_x KL(p(y|x) || p(y)))
per split with its seeded shuffle; ``fid_statistics_to_metric``: ||mu_1 - mu_2||^2 +
Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))), so our numbers are torch-fidelity's on the same features.
"""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

KID_DEGREE, KID_COEF0 = 3, 1.0  # the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018, Sec. 4)


def inception_score(logits: torch.Tensor, splits: int) -> tuple[float, float]:
    """(mean, std) over ``splits`` of exp(E KL(p(y|x) || p(y))), from unnormalized logits."""
    result = isc_features_to_metric(logits.detach().cpu().double(), splits=splits, shuffle=True, rng_seed=2020)
    return result["inception_score_mean"], result["inception_score_std"]


def feature_statistics(features: torch.Tensor) -> dict:
    """Mean and covariance (float64 numpy) of (N, D) features."""
    return fid_features_to_statistics(features.detach().cpu().double())


def frechet_distance(statistics_1: dict, statistics_2: dict) -> float:
    return fid_statistics_to_metric(statistics_1, statistics_2, verbose=False)["frechet_inception_distance"]


def kernel_distance(generated: torch.Tensor, real: torch.Tensor, subsets: int, subset_size: int,
                    seed: int = 2020) -> tuple[float, float]:
    """(mean, std) over ``subsets`` of the unbiased MMD^2 with the cubic polynomial kernel between ``subset_size``
    features of each side drawn without replacement (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 4),
    computed by torch-fidelity in float64."""
    result = kid_features_to_metric(generated.detach().cpu().double(), real.detach().cpu().double(),
                                    kid_subsets=subsets, kid_subset_size=subset_size, kid_kernel="poly",
                                    kid_kernel_poly_degree=KID_DEGREE, kid_kernel_poly_gamma=None,
                                    kid_kernel_poly_coef0=KID_COEF0, rng_seed=seed, verbose=False)
    return result["kernel_inception_distance_mean"], result["kernel_inception_distance_std"]


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3): the fraction of generated samples inside
    some real sample's k-nearest-neighbour ball, and of real samples inside some generated sample's; by
    torch-fidelity (its convention: input 1 generated, input 2 real)."""
    result = prc_features_to_metric(generated.detach().cpu().double(), real.detach().cpu().double(),
                                    prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return result["precision"], result["recall"]


def extract(extractor, batches, device, on_cpu: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features and logits (None from an extractor without) of batches of uint8 images, computed on ``device``,
    returned on the CPU, or (``on_cpu=False``, for ranks that gather them) on ``device``."""
    outputs = [tuple(part.cpu() if on_cpu and part is not None else part for part in extractor(batch.to(device)))
               for batch in batches]
    logits = None if outputs[0][1] is None else torch.cat([logit for _, logit in outputs])
    return torch.cat([pool for pool, _ in outputs]), logits


def _real_cache(kind: str, datamodule, count: int, extractor, cache_dir, batch_size: int, device,
                description: dict | None, compute: Callable[[torch.Tensor], dict]) -> dict:
    """``compute(features)`` of ``count`` training images (all of them if fewer), cached in ``cache_dir`` as
    ``<kind>_<key>.npz``.

    The cache key is the dataset's description (``description``, e.g. its config), the count,
    the split (training images after the held-out split) and the extractor's name; a second
    call with the same key reads the file instead of recomputing.
    """
    key = json.dumps({"dataset": description or {"name": datamodule.name}, "split": "train", "count": count,
                      "image_size": datamodule.image_size, "channels": datamodule.channels,
                      "extractor": extractor.name}, sort_keys=True, default=str)
    path = Path(cache_dir) / f"{kind}_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                return {name: stored[name] for name in stored.files if name != "key"}
        except (OSError, ValueError, KeyError):  # a truncated cache file is recomputed over
            pass
    features, _ = extract(extractor, datamodule.iter_images("train", count, batch_size), device)
    result = compute(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(partial, **result, key=key)
    os.replace(partial, path)  # atomic: concurrent runs never read a half-written file
    return result


def real_statistics(datamodule, count: int, extractor, cache_dir, batch_size: int = 100, device="cpu",
                    description: dict | None = None) -> dict:
    """FID statistics (mean, covariance, count) of ``count`` training images, cached (``_real_cache``)."""
    stored = _real_cache("fid_stats", datamodule, count, extractor, cache_dir, batch_size, device, description,
                         lambda features: {**feature_statistics(features), "count": len(features)})
    return {"mu": stored["mu"], "sigma": stored["sigma"], "count": int(stored["count"])}


def real_features(datamodule, count: int, extractor, cache_dir, batch_size: int = 100, device="cpu",
                  description: dict | None = None) -> torch.Tensor:
    """The features of ``count`` training images (float64, on the CPU), e.g. for KID, cached (``_real_cache``; as
    float32 when that is exact, as for the networks that compute in float32: half the file)."""

    def narrowed(features: torch.Tensor) -> dict:
        narrow = features.float()
        return {"features": (narrow if torch.equal(narrow.double(), features.double()) else features).numpy()}

    stored = _real_cache("real_features", datamodule, count, extractor, cache_dir, batch_size, device, description,
                         narrowed)
    return torch.from_numpy(stored["features"]).double()


def count_tag(count: int) -> str:
    """5000 -> '5k', 50000 -> '50k', 1797 -> '1797': the sample counts in metric names."""
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)
