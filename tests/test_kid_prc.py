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


def test_kid_and_precision_recall_of_a_generator_share_the_samples_features_and_equal_the_scores_on_them(tmp_path):
    """SampleQuality with IS, FID, KID and precision/recall: one pass over the samples; its KID and precision/recall
    are the scores of those samples' features (extracted here again) against the cached features of the real images
    (extracted here directly)."""
    from conftest import tiny_run_overrides

    from sngan_repro.data import build_datamodule
    from sngan_repro.data.pixels import to_uint8_truncated
    from sngan_repro.metrics import MetricSetup
    from sngan_repro.metrics.base import instantiate_measures
    from sngan_repro.metrics.scores import extract
    from sngan_repro.module import GAN

    cfg = compose(tiny_run_overrides(tmp_path, 4, "metrics=digits", f"paths.cache_dir={tmp_path / 'cache'}",
                                            "metrics.measures.digits.kid={samples: 300, real: 400, subsets: 3, "
                                            "subset_size: 100}",
                                            "metrics.measures.digits.precision_recall={samples: 250, real: 400, k: 4}"))
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
    name = "digits_kid/300_vs_train400_3x100_poly3"
    precision, recall = "digits_precision/250_vs_train400_k4", "digits_recall/250_vs_train400_k4"
    assert sorted(results) == sorted([name, f"{name}_std", "digits_fid/2k_vs_train1797", "digits_is/2k_1split",
                                      "digits_is/2k_1split_std", precision, recall]) == sorted(metric.names())
    assert (results[name], results[f"{name}_std"]) == pytest.approx(kernel_distance(generated, real, 3, 100),
                                                                     rel=1e-6)
    assert (results[precision], results[recall]) == pytest.approx(precision_recall(generated[:250], real, 4),
                                                                  rel=1e-6)
    assert metric.protocols()[name].startswith("Kernel distance (unbiased MMD^2, kernel (x.y/d + 1)^3")
    assert "k=4 nearest-neighbour balls" in metric.protocols()[recall]


def test_a_preset_written_with_a_setting_no_score_reads_is_refused_in_one_sentence():
    from sngan_repro.metrics import SampleQuality
    from sngan_repro.metrics.base import MetricSettingError

    with pytest.raises(MetricSettingError, match=r"^kid.kernel is not a setting of kid; accepted: samples, real, "
                                                 r"subsets, subset_size\.$"):
        SampleQuality(extractor=None, cache_dir=".", kid={"samples": 10, "real": 10, "kernel": "rbf"})
    with pytest.raises(MetricSettingError, match=r"^fid='real:10' is not a mapping of its settings; give e\.g\. "
                                                 r"fid=\{samples: 1000, real: 1000\} \(quoted in the shell\)\.$"):
        SampleQuality(extractor=None, cache_dir=".", fid="real:10")  # bash's expansion of fid={samples:10,real:10}


@pytest.mark.slow
def test_vgg16_precision_recall_equals_torch_fidelity_calculate_metrics_with_the_same_weights_file(tmp_path):
    """Our VGG-16 precision/recall measure on an image set against a reference set, with a weights file of
    torchvision's VGG-16 shapes (random values: the numbers mean nothing), equals torch-fidelity's own API on the
    same images and file."""
    import torch_fidelity
    import torchvision

    from sngan_repro.data.image_set import ImageSet
    from sngan_repro.metrics import MetricSetup, SampleQuality
    from sngan_repro.metrics.vgg import load_vgg16

    weights = tmp_path / "vgg16-random.pth"
    torch.save(torchvision.models.vgg16().state_dict(), weights)  # torchvision's init, seeded by the test's seed
    rng = np.random.default_rng(0)
    for name, high, count in (("generated", 256, 14), ("real", 240, 12)):
        np.savez(tmp_path / f"{name}.npz", arr_0=rng.integers(0, high, (count, 32, 32, 3), dtype=np.uint8))
    generated, real = (ImageSet(str(tmp_path / f"{name}.npz"), name) for name in ("generated", "real"))
    metric = SampleQuality(extractor=lambda device: load_vgg16(str(weights), device), cache_dir=str(tmp_path / "c"),
                           precision_recall={"samples": 14, "real": 12, "k": 3}, batch_size=7, prefix="vgg16_")
    metric.prepare(MetricSetup(real, torch.device("cpu"), {}))
    ours = metric.compute(generated)
    theirs = torch_fidelity.calculate_metrics(
        input1=_Stored(tmp_path / "generated.npz"), input2=_Stored(tmp_path / "real.npz"), prc=True,
        feature_extractor="vgg16", feature_extractor_weights_path=str(weights), cuda=False, cache=False,
        verbose=False, batch_size=7)
    assert ours == {"vgg16_precision/14_vs_ref12_k3": pytest.approx(theirs["precision"], rel=1e-6),
                    "vgg16_recall/14_vs_ref12_k3": pytest.approx(theirs["recall"], rel=1e-6)}
    assert 0 < theirs["precision"] < 1 or 0 < theirs["recall"] < 1  # informative despite random weights
    assert metric.extractor.name.startswith("vgg16-fc2-relu[vgg16-random.pth-")
    assert "the reference, the first 12 of the 12 images of" in metric.protocols()["vgg16_recall/14_vs_ref12_k3"]


class _Stored(torch.utils.data.Dataset):
    """A .npz's images as torch-fidelity reads a dataset: uint8 (3, H, W) tensors."""

    def __init__(self, path):
        with np.load(path) as stored:
            self.images = torch.from_numpy(stored["arr_0"]).permute(0, 3, 1, 2).contiguous()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


def test_vgg16_offline_without_weights_says_what_to_do():
    import urllib.error
    from unittest import mock

    from sngan_repro.errors import MetricsUnavailableError
    from sngan_repro.metrics.vgg import load_vgg16

    with mock.patch("torch_fidelity.feature_extractor_vgg16.torchvision_load_pretrained_vgg16",
                    side_effect=urllib.error.URLError("no network")), pytest.raises(MetricsUnavailableError) as error:
        load_vgg16(None)
    assert str(error.value) == (
        "The VGG-16 weights could not be downloaded (URLError); on an offline machine download vgg16-397923af.pth from "
        "torchvision's model zoo elsewhere and set metrics.vgg16_weights=/path/to/vgg16-397923af.pth.")
    with pytest.raises(MetricsUnavailableError, match=r"^metrics.vgg16_weights=/nowhere.pth does not exist; give "
                                                      r"the path of vgg16-397923af.pth \(torchvision's model zoo\)\.$"):
        load_vgg16("/nowhere.pth")
