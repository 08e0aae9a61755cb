"""A small classifier of scikit-learn's 8x8 digits: the offline feature extractor for IS/FID.

Offline there are no Inception weights; for the embedded digits a classifier trained on their
labels gives "classifier-based" IS/FID, as is common for MNIST-like data. Its numbers are not
comparable with Inception-based ones, so metric names and cache keys carry its ``name``.

The classifier sees every image at the digits' native 8x8: inputs of any size are area-averaged
down to 8x8, which undoes the datamodule's bilinear upsampling up to a slight blur. Training on
the datamodule's pipeline at a few sizes (native and upsampled) makes it robust to that blur.
"""

import logging
import os
import pickle
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from ..data import DigitsDataModule
from ..data.base import heldout_split

log = logging.getLogger(__name__)

# Change RECIPE whenever anything below changes: it names the cache file and the metrics.
RECIPE = "digits-classifier-v1"
SEED = 0
HELDOUT_FRACTION = 0.2
TRAIN_SIZES = (8, 12, 16)  # native, non-integer and integer upsampling factors
EPOCHS = 20
BATCH_SIZE = 64
MAX_LR = 3e-3
WEIGHT_DECAY = 1e-4
NUM_CLASSES = 10
FEATURE_DIM = 64


class DigitsClassifierFeatures(nn.Module):
    """uint8 images (N, C, H, W), C in {1, 3}, H = W >= 8 -> (features (N, 64), logits (N, 10)).

    An MLP 64 -> 128 -> 64 -> 10 on the area-downsampled grey image; the features are the
    penultimate layer's activations (after its ReLU).
    """

    name = RECIPE

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.heldout_accuracy: float | None = None  # set by training (or read from the cache file)

    @staticmethod
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float (N, 64) in [-1, 1]: grey, area-averaged to 8x8."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 images (N, 1 or 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if images.shape[2] != images.shape[3] or images.shape[2] < 8:
            raise ValueError(f"expected square images of at least 8x8 pixels, got {tuple(images.shape[2:])}")
        grey = images.float().mean(1, keepdim=True) / 255.0
        return F.adaptive_avg_pool2d(grey, 8).flatten(1) * 2.0 - 1.0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(self.preprocess(images.to(self.head.weight.device)))
        return features, self.head(features)


def digits_labels() -> torch.Tensor:
    """The class (0..9) of each digit, in the order of ``DigitsDataModule.load_images``."""
    return torch.from_numpy(load_digits().target).long()


def digits_split() -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, held-out indices) of the 1,797 digits: the classifier's seeded 80/20 split."""
    size = len(digits_labels())
    return heldout_split(size, round(HELDOUT_FRACTION * size), SEED)


def accuracy(model: DigitsClassifierFeatures, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images)[1].argmax(1).cpu() == labels).float().mean().item()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Its matrices are tiny: one thread is fastest, does not stall on a busy CPU (2 threads were
    measured 10-20x slower when other processes competed), and keeps the weights independent of
    the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_digits_classifier() -> DigitsClassifierFeatures:
    """Train the classifier from scratch (about a second on CPU); deterministic, and the caller's
    global RNG state is left untouched. Its held-out accuracy is in ``.heldout_accuracy``."""
    start = time.perf_counter()
    labels = digits_labels()
    train, heldout = digits_split()
    inputs = torch.cat([DigitsClassifierFeatures.preprocess(DigitsDataModule(image_size=size).load_images()[train])
                        for size in TRAIN_SIZES])
    targets = labels[train].repeat(len(TRAIN_SIZES))

    with torch.random.fork_rng(devices=[]):  # parameter init draws from the global RNG
        torch.manual_seed(SEED)
        model = DigitsClassifierFeatures()
    shuffle = torch.Generator().manual_seed(SEED)
    steps_per_epoch = -(-len(targets) // BATCH_SIZE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=MAX_LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, MAX_LR, total_steps=EPOCHS * steps_per_epoch)
    with _one_thread():
        for _ in range(EPOCHS):
            for batch in torch.randperm(len(targets), generator=shuffle).split(BATCH_SIZE):
                logits = model.head(model.body(inputs[batch]))
                loss = F.cross_entropy(logits, targets[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()

    model.eval()
    native = DigitsDataModule(image_size=8).load_images()
    model.heldout_accuracy = accuracy(model, native[heldout], labels[heldout])
    log.info("Trained %s in %.1f s: held-out accuracy %.2f%% on %d digits.", RECIPE,
             time.perf_counter() - start, 100 * model.heldout_accuracy, len(heldout))
    return model


def cache_path(cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"{RECIPE}.pt"


def _load_cached(path: Path) -> DigitsClassifierFeatures | None:
    """The cached classifier, or None if the file is absent, unreadable or from another recipe."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload["recipe"] != RECIPE:
            return None
        model = DigitsClassifierFeatures()
        model.load_state_dict(payload["state_dict"])
        model.heldout_accuracy = float(payload["heldout_accuracy"])
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as error:
        log.warning("Ignoring the unreadable classifier cache %s (%s); retraining.", path, type(error).__name__)
        return None
    return model


def _save(model: DigitsClassifierFeatures, path: Path) -> None:
    """Write via a temporary file and a rename, so a concurrent or interrupted run never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"recipe": RECIPE, "state_dict": model.state_dict(), "heldout_accuracy": model.heldout_accuracy}
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(payload, file)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_digits_classifier(cache_dir: str | Path, device: str | torch.device = "cpu") -> DigitsClassifierFeatures:
    """The trained digits classifier in eval mode with gradients off: read from ``cache_dir``, or
    trained (and cached there) on first use or when the cached file is corrupt."""
    path = cache_path(cache_dir)
    model = _load_cached(path)
    if model is None:
        model = train_digits_classifier()
        _save(model, path)
    model.eval().requires_grad_(False)
    return model.to(device)
