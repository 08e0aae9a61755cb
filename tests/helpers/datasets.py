"""Datasets in their real on-disk formats, written into a temporary folder."""

import os
import pickle
from pathlib import Path

import numpy as np


def files_exist(path, md5=None) -> bool:
    """Stand-in for torchvision's ``check_integrity``: the files written here are not the published ones,
    so the md5 check is reduced to "the file exists"."""
    return os.path.isfile(path)


def write_cifar10(root, images_per_batch: int = 4, seed: int = 0) -> np.ndarray:
    """CIFAR-10's python format under ``root/cifar-10-batches-py``: pickled dicts of (N, 3072) uint8 rows,
    channel-major (R, G, B planes), in five training batches and a test batch. Image i of each batch has
    label i mod 10. Returns the training rows in order (test_batch excluded).

    Read it with ``check_integrity`` replaced by ``files_exist`` (torchvision checks the md5 sums).
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = [i % 10 for i in range(images_per_batch)]
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(images_per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        if name != "test_batch":
            rows.append(data)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)
    return np.concatenate(rows)
