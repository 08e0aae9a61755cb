"""The digits classifier used as the offline IS/FID feature extractor: accuracy on native and
upsampled digits, the forward contract, the weights cache, determinism, and whether its feature
space separates real digits from noise and from mode collapse."""

import numpy as np
import pytest
import torch
from scipy import linalg

from sngan_repro.data import DigitsDataModule
from sngan_repro.metrics import digits_classifier
from sngan_repro.metrics.digits_classifier import (
    FEATURE_DIM,
    RECIPE,
    accuracy,
    cache_path,
    digits_labels,
    digits_split,
    load_digits_classifier,
)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return load_digits_classifier(tmp_path_factory.mktemp("classifier"))


def digits(image_size: int, channels: int = 1) -> torch.Tensor:
    return DigitsDataModule(image_size=image_size, channels=channels).load_images()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2); the trace of the root is the sum of the
    roots of the eigenvalues, which stays exact when a dead ReLU unit makes S_a S_b singular."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_trace = np.sqrt(np.clip(linalg.eigvals(cov_a @ cov_b).real, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b) - 2 * root_trace)


# -- accuracy ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("image_size,channels", [(8, 1), (24, 1), (32, 3)])
def test_heldout_accuracy(classifier, image_size, channels):
    # the 20% split never seen in training, at the native size and through the datamodule's upsampling
    from sklearn.datasets import load_digits

    target = torch.from_numpy(load_digits().target)
    trained, heldout = digits_split()
    assert len(heldout) == round(0.2 * len(target)) and len(trained) + len(heldout) == len(target)
    assert not set(trained.tolist()) & set(heldout.tolist())
    with torch.no_grad():
        _, logits = classifier(digits(image_size, channels)[heldout])
    held = (logits.argmax(1) == target[heldout]).double().mean().item()  # counted here, not by accuracy()
    assert held >= 0.95
    if image_size == 8:  # what training measured and stored with the weights
        assert held == pytest.approx(classifier.heldout_accuracy)


@pytest.mark.parametrize("image_size,channels", [(24, 1), (32, 3)])
def test_accuracy_on_datamodule_images(classifier, image_size, channels):
    # all 1,797 digits as the datamodule builds them: 80% of them were trained on (at 8, 12 and 16 px)
    assert accuracy(classifier, digits(image_size, channels), digits_labels()) >= 0.95


# -- forward contract -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (5, 1, 24, 24), (5, 3, 32, 32), (5, 3, 13, 13)])
def test_forward_shapes_and_dtypes(classifier, shape):
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features, logits = classifier(images)
    assert features.shape == (5, FEATURE_DIM) and logits.shape == (5, 10)
    assert features.dtype == logits.dtype == torch.float32
    assert torch.isfinite(features).all() and torch.isfinite(logits).all()
    assert (features >= 0).all()  # the penultimate layer's activations, after its ReLU


def test_loaded_classifier_is_frozen_and_in_eval_mode(classifier):
    assert not classifier.training
    assert not any(p.requires_grad for p in classifier.parameters())
    assert classifier.name == RECIPE


@pytest.mark.parametrize("images", [
    torch.zeros(2, 1, 8, 8),                        # float, not uint8
    torch.zeros(2, 2, 8, 8, dtype=torch.uint8),     # 2 channels
    torch.zeros(2, 1, 4, 4, dtype=torch.uint8),     # below the native 8x8
    torch.zeros(2, 1, 16, 8, dtype=torch.uint8),    # not square
])
def test_forward_rejects_other_inputs(classifier, images):
    with pytest.raises(ValueError, match="expected"):
        classifier(images)


# -- cache and determinism --------------------------------------------------------------------------

def _refuse_training():
    raise AssertionError("the classifier was retrained although a valid cache file exists")


def test_second_load_reads_the_cache(tmp_path, monkeypatch):
    first = load_digits_classifier(tmp_path)
    assert cache_path(tmp_path).is_file() and RECIPE in cache_path(tmp_path).name
    assert [p.name for p in tmp_path.iterdir()] == [cache_path(tmp_path).name]  # no temporary file left
    monkeypatch.setattr(digits_classifier, "train_digits_classifier", _refuse_training)
    second = load_digits_classifier(tmp_path)
    images = digits(24)[:64]
    for a, b in zip(first(images), second(images)):
        assert torch.equal(a, b)
    assert second.heldout_accuracy == first.heldout_accuracy
    assert not second.training and not any(p.requires_grad for p in second.parameters())


def test_corrupt_cache_file_is_retrained_over(tmp_path, monkeypatch):
    cache_path(tmp_path).write_bytes(b"\x00garbage, not a torch file" * 10)
    trainings = []
    train = digits_classifier.train_digits_classifier
    monkeypatch.setattr(digits_classifier, "train_digits_classifier", lambda: trainings.append(1) or train())
    model = load_digits_classifier(tmp_path)
    assert trainings == [1]
    assert model.heldout_accuracy >= 0.95
    assert load_digits_classifier(tmp_path).heldout_accuracy == model.heldout_accuracy  # the file was replaced
    assert trainings == [1]


def test_training_is_deterministic_and_leaves_the_global_rng_alone(classifier, tmp_path):
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    retrained = load_digits_classifier(tmp_path)  # a fresh cache dir: trains again
    assert torch.equal(torch.get_rng_state(), before)
    reference, state = classifier.state_dict(), retrained.state_dict()
    assert reference.keys() == state.keys()
    for key in reference:
        assert torch.equal(reference[key], state[key]), key


# -- usefulness as an FID feature space -------------------------------------------------------------

def test_frechet_distance_separates_real_digits_from_noise_and_mode_collapse(classifier):
    images, labels = digits(32), digits_labels()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2:]
    noise = torch.randint(0, 256, (len(half_a), 1, 32, 32), dtype=torch.uint8, generator=torch.Generator())
    collapsed = half_b[labels[half_b] == 3]  # every sample of a single class

    def features(batch):
        return classifier(batch)[0].double().numpy()

    real = features(images[half_a])
    real_vs_real = frechet_distance(real, features(images[half_b]))
    real_vs_noise = frechet_distance(real, features(noise))
    real_vs_collapsed = frechet_distance(real, features(images[collapsed]))
    print(f"FID-like distances: real/real {real_vs_real:.3f}, real/noise {real_vs_noise:.3f}, "
          f"real/single-class {real_vs_collapsed:.3f}")
    assert real_vs_real < real_vs_noise / 5
    assert real_vs_real < real_vs_collapsed / 5
