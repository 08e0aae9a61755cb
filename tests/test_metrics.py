"""IS and FID against direct numpy/scipy computations and against torch-fidelity's own
calculate_metrics; the offline behaviour; the real-statistics cache."""

import urllib.error
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch
from torch.utils.data import Dataset

from sngan_repro import compose
from sngan_repro.callbacks import MetricsCallback
from sngan_repro.data import DigitsDataModule, SyntheticDataModule
from sngan_repro.data.pixels import to_uint8_rounded, to_uint8_truncated, uint8_to_range
from sngan_repro.errors import MetricsUnavailableError
from sngan_repro.metrics import MetricSetup, scores
from sngan_repro.metrics.inception import load_inception
from sngan_repro.metrics.scores import (
    count_tag,
    feature_statistics,
    frechet_distance,
    inception_score,
    real_statistics,
)


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sigma_a @ sigma_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a + sigma_b - 2 * root))


def test_fid_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 12))
    b = rng.normal(size=(250, 12)) @ rng.normal(size=(12, 12)) * 0.5 + 0.3
    ours = frechet_distance(feature_statistics(torch.from_numpy(a)), feature_statistics(torch.from_numpy(b)))
    assert ours == pytest.approx(_scipy_fid(a, b), rel=1e-3)
    assert frechet_distance(feature_statistics(torch.from_numpy(a)), feature_statistics(torch.from_numpy(a))) \
        == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize("splits", [1, 5])
def test_inception_score_matches_the_direct_formula(splits):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(100, 10)) * 3
    order = np.random.RandomState(2020).permutation(100)  # torch-fidelity's seeded shuffle
    p = np.exp(logits[order]) / np.exp(logits[order]).sum(1, keepdims=True)
    per_split = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(0, keepdims=True)
        per_split.append(np.exp((chunk * (np.log(chunk) - np.log(marginal))).sum(1).mean()))
    mean, std = inception_score(torch.from_numpy(logits), splits)
    assert mean == pytest.approx(np.mean(per_split), rel=1e-9)
    assert std == pytest.approx(np.std(per_split), rel=1e-6, abs=1e-12)


def test_quantization_follows_the_papers():
    images = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0])
    assert to_uint8_truncated(images, (-1, 1)).tolist() == [0, 0, 127, 254, 255, 255]  # clamp, scale, truncate
    assert to_uint8_truncated(torch.tensor([0.5]), (0, 1)).tolist() == [127]
    assert to_uint8_rounded(images, (-1, 1)).tolist() == [0, 0, 128, 255, 255, 255]  # clamp, scale, round
    assert to_uint8_rounded(torch.tensor([0.5, 1.5, 2.5, 2.6]), (0, 255)).tolist() == [0, 2, 2, 3]  # half to even
    levels = torch.arange(256, dtype=torch.uint8)
    for value_range in ((-1, 1), (0, 1), (0, 255)):  # storing a stored image's value gives it back, both rules
        assert torch.equal(to_uint8_rounded(uint8_to_range(levels, value_range), value_range), levels)
    assert [count_tag(n) for n in (5000, 50000, 1797)] == ["5k", "50k", "1797"]


class _Images(Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]


@pytest.mark.slow
def test_agrees_with_torch_fidelity_calculate_metrics(inception_weights):
    import torch_fidelity

    generator = torch.Generator().manual_seed(0)
    first = torch.randint(0, 256, (12, 3, 32, 32), generator=generator, dtype=torch.uint8)
    second = torch.randint(0, 128, (12, 3, 32, 32), generator=generator, dtype=torch.uint8)
    extractor = load_inception(inception_weights)
    pool_1, logits_1 = scores.extract(extractor, first.split(6), "cpu")
    pool_2, _ = scores.extract(extractor, second.split(6), "cpu")
    ours_is, _ = inception_score(logits_1, splits=2)
    ours_fid = frechet_distance(feature_statistics(pool_1), feature_statistics(pool_2))
    theirs = torch_fidelity.calculate_metrics(
        input1=_Images(first), input2=_Images(second), isc=True, fid=True, isc_splits=2, cuda=False, cache=False,
        verbose=False, batch_size=6, feature_extractor_weights_path=inception_weights)
    assert ours_fid > 1  # random He-scaled weights still separate the two sets
    assert ours_is == pytest.approx(theirs["inception_score_mean"], rel=1e-3)
    assert ours_fid == pytest.approx(theirs["frechet_inception_distance"], rel=1e-3)


def _offline():
    return mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url",
                      side_effect=urllib.error.URLError("no network"))


def test_offline_without_weights_says_what_to_do():
    with _offline(), pytest.raises(MetricsUnavailableError) as error:
        load_inception(None)
    message = str(error.value)
    assert "could not be downloaded" in message and "metrics.inception_weights=" in message
    assert message.count(". ") == 0
    with pytest.raises(MetricsUnavailableError, match="metrics.inception_weights=/nowhere.pth does not exist"):
        load_inception("/nowhere.pth")


def test_offline_training_goes_on_without_inception_unless_required(capsys):
    cfg = compose(["metrics=train_fast", "dataset=digits"])
    setup = MetricSetup(DigitsDataModule(), torch.device("cpu"), dict(cfg.dataset))
    with _offline():
        callback = MetricsCallback(cfg.metrics.measures, cfg.train.steps, cfg.dataset, required=False)
        callback._prepare(setup)
        assert callback.metrics == {} and callback.logged_names() == {}
        assert "warning: The Inception weights could not be downloaded" in capsys.readouterr().err
        required = MetricsCallback(cfg.metrics.measures, cfg.train.steps, cfg.dataset, required=True)
        with pytest.raises(MetricsUnavailableError):
            required._prepare(setup)


def test_offline_run_trains_with_metrics_off(tiny_cfg, capsys):
    from sngan_repro.train import run

    with _offline():
        module = run(tiny_cfg("metrics=train_fast", "metrics.measures.inception.every=2", "logger=none", steps=4))
    assert module.g_step == 4
    assert "Training goes on without metrics.measures.inception" in capsys.readouterr().err


@pytest.mark.slow
def test_weights_file_gives_metrics_in_a_run(tiny_cfg, tmp_path, inception_weights):
    from sngan_repro.train import run

    inception = "metrics.measures.inception"
    module = run(tiny_cfg("metrics=train_fast", f"metrics.inception_weights={inception_weights}",
                          f"{inception}.every=2",
                          f"{inception}.inception_score.samples=8", f"{inception}.fid.samples=8",
                          f"{inception}.fid.real=16", f"{inception}.batch_size=8",
                          f"paths.cache_dir={tmp_path / 'cache'}", "logger=tensorboard", "dataset.channels=3", steps=2))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("fid/8_vs_train16")] == [0, 2]
    assert [e.step for e in events.Scalars("is/8_1split")] == [0, 2]
    assert module.g_step == 2


class _CountingExtractor(torch.nn.Module):
    name = "counting"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        flat = images.flatten(1).double()
        return flat[:, :6], flat[:, :3]


def test_real_statistics_are_cached_per_key(tmp_path):
    datamodule = SyntheticDataModule(image_size=4, channels=1, size=50, batch_size=4)
    extractor = _CountingExtractor()
    first = real_statistics(datamodule, 30, extractor, tmp_path, batch_size=10, description={"name": "s"})
    calls = extractor.calls
    again = real_statistics(datamodule, 30, extractor, tmp_path, batch_size=10, description={"name": "s"})
    assert extractor.calls == calls and np.array_equal(first["mu"], again["mu"]) and again["count"] == 30
    features = datamodule.images("train", 30).flatten(1).double()[:, :6].numpy()
    np.testing.assert_allclose(first["mu"], features.mean(0))
    np.testing.assert_allclose(first["sigma"], np.cov(features, rowvar=False))  # numpy's unbiased covariance
    real_statistics(datamodule, 20, extractor, tmp_path, batch_size=10, description={"name": "s"})
    assert extractor.calls > calls and len(list(tmp_path.glob("fid_stats_*.npz"))) == 2
