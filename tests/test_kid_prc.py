"""KID and precision/recall (sngan_repro.metrics.scores) against independent numpy computations: the unbiased MMD^2
with the cubic polynomial kernel on the same subsets, and improved precision/recall by brute-force k-NN."""

import numpy as np
import pytest
import torch

from sngan_repro import compose
from sngan_repro.metrics.scores import kernel_distance, precision_recall


def _features(seed: int, n: int, d: int = 16, shift: float = 0.0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(shift, 1.0, (n, d)))


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Binkowski et al. 2018, Eq. 3 with k(a, b) = (a.b / d + 1)^3, written from the formula."""
    d, m = x.shape[1], len(x)
    kernel = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    return ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
            - 2 * k_xy.mean())


def test_kid_is_the_mean_and_std_of_the_unbiased_cubic_kernel_mmd_over_the_same_subsets():
    generated, real = _features(0, 300, shift=0.3), _features(1, 250)
    mean, std = kernel_distance(generated, real, subsets=5, subset_size=100, seed=7)
    rng = np.random.RandomState(7)  # the subsets: drawn as torch-fidelity draws them, generated then real
    values = []
    for _ in range(5):
        x = generated.numpy()[rng.choice(300, 100, replace=False)]
        y = real.numpy()[rng.choice(250, 100, replace=False)]
        values.append(_unbiased_mmd2(x, y))
    assert mean == pytest.approx(np.mean(values), rel=1e-6) and std == pytest.approx(np.std(values), rel=1e-6)
    assert kernel_distance(real[:200], real[:200].clone(), 3, 100)[0] < mean  # same features: near 0


def test_precision_and_recall_are_the_brute_force_k_nearest_neighbour_fractions():
    generated, real = _features(2, 60, d=4, shift=0.8), _features(3, 50, d=4)
    precision, recall = precision_recall(generated, real, k=3)

    def radii(points):  # distance to the k-th nearest other point (the point itself is at distance 0)
        return np.array([np.sort(np.linalg.norm(points - p, axis=1))[3] for p in points])

    g, r = generated.numpy(), real.numpy()
    real_radii, generated_radii = radii(r), radii(g)
    inside_real = [any(np.linalg.norm(p - q) <= rad for q, rad in zip(r, real_radii)) for p in g]
    inside_generated = [any(np.linalg.norm(q - p) <= rad for p, rad in zip(g, generated_radii)) for q in r]
    assert precision == pytest.approx(np.mean(inside_real), rel=1e-6)
    assert recall == pytest.approx(np.mean(inside_generated), rel=1e-6)
    assert 0 < precision < 1 and 0 < recall < 1  # the shift makes both informative


def test_kid_of_a_generator_shares_the_samples_features_with_fid_and_equals_kid_on_them(tmp_path):
    """SampleQuality with IS, FID and KID: one pass over the samples; its KID is kernel_distance on those samples'
    features (extracted here again) against the cached features of the real images (extracted here directly)."""
    from conftest import tiny_run_overrides

    from sngan_repro.data import build_datamodule
    from sngan_repro.data.pixels import to_uint8_truncated
    from sngan_repro.metrics import MetricSetup
    from sngan_repro.metrics.base import instantiate_measures
    from sngan_repro.metrics.scores import extract
    from sngan_repro.module import GAN

    cfg = compose(tiny_run_overrides(tmp_path, 4, "metrics=digits", f"paths.cache_dir={tmp_path / 'cache'}",
                                            "+metrics.measures.digits.kid={samples: 300, real: 400, subsets: 3, "
                                            "subset_size: 100}"))
    (metric,) = instantiate_measures(cfg.metrics.measures).values()
    datamodule = build_datamodule(cfg)
    gan = GAN(cfg).eval()
    metric.prepare(MetricSetup(datamodule, torch.device("cpu"), dict(cfg.dataset)))
    calls = []
    forward = metric.extractor.forward
    metric.extractor.forward = lambda images: (calls.append(len(images)), forward(images))[1]
    results = metric.compute(gan)
    assert sum(calls) == 2000  # max(IS 2000, FID 2000, KID 300) samples, once
    metric.extractor.forward = forward

    size = metric.batch_size  # the samples' codes: chunk c of the metrics stream at step c
    codes = torch.cat([gan.latent_draw(min(size, 2000 - start), "metrics", chunk)
                       for chunk, start in enumerate(range(0, 2000, size))])[:300]
    with torch.no_grad():
        generated, _ = extract(metric.extractor, [to_uint8_truncated(gan.generate(codes), gan.output_range)], "cpu")
    real, _ = extract(metric.extractor, datamodule.iter_images("train", 400, 100), "cpu")
    name = "digits_kid/300_vs_train400_3x100"
    assert set(results) >= {name, f"{name}_std", "digits_fid/2k_vs_train1797", "digits_is/2k_1split"}
    assert (results[name], results[f"{name}_std"]) == pytest.approx(kernel_distance(generated, real, 3, 100),
                                                                     rel=1e-6)
    assert metric.protocols()[name].startswith("Kernel distance (unbiased MMD^2, kernel (x.y/d + 1)^3")
