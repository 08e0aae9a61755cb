"""Images from outside our runs, for ``python -m sngan_repro.evaluate images=... reference=...``: a folder of image
files or a ``.npz`` (uint8, N x H x W x C under ``arr_0``, the layout the TensorFlow IS/FID scripts and
``python -m sngan_repro.sample`` write).

An ``ImageSet`` gives its first ``count`` images as uint8 (B, C, H, W) batches, in file-name order for a folder, and
serves as the real side of the metrics with the datamodule's interface (``iter_images``, ``name``, ``image_size``,
``channels``), so the metric objects score it as they score a dataset.
"""

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from .imagefolder import EXTENSIONS

EXPORT_RECORD = "export.json"  # in an exported folder; beside an exported .npz: <file>.npz.json


def export_record_path(path: Path) -> Path:
    """Where ``python -m sngan_repro.sample`` records an export of ``path`` (a folder or a .npz)."""
    return path.with_name(path.name + ".json") if path.suffix == ".npz" else path / EXPORT_RECORD


class ImageSet:
    """The images of ``path`` (a folder or a .npz); ``setting`` names the command-line key in refusals."""

    def __init__(self, path: str, setting: str):
        self.path, self.setting = Path(path).expanduser(), setting
        self.name = str(self.path.resolve())
        if self.path.suffix == ".npz" and self.path.is_file():
            self._array = self._read_npz()
            self.files: list[Path] = []
            count, height, width, self.channels = self._array.shape
        elif self.path.is_dir():
            self._array = None
            self.files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() in EXTENSIONS)
            if not self.files:
                raise ConfigError(f"{setting}={path} holds no image files (accepted: {', '.join(EXTENSIONS)}); give "
                                  f"a folder of images or a .npz.")
            with Image.open(self.files[0]) as first:
                width, height = first.size
                self.channels = 1 if first.mode in ("L", "1", "I;16", "I") else 3
            count = len(self.files)
        else:
            raise ConfigError(f"{setting}={path} is neither a folder nor a .npz file; give a folder of images or a "
                              f".npz (uint8, N x H x W x C under arr_0).")
        if height != width:
            raise ConfigError(f"{setting}={path} holds {width}x{height} images; the metrics take square images.")
        self.count, self.image_size = count, height
        record = export_record_path(self.path)
        self.export = json.loads(record.read_text()) if record.is_file() else None  # where the images came from

    def _read_npz(self) -> np.ndarray:
        try:
            with np.load(self.path) as stored:
                array = stored["arr_0"] if "arr_0" in stored.files else None
        except (OSError, ValueError) as error:
            raise ConfigError(f"{self.setting}={self.path} is not a readable .npz ({type(error).__name__}).") from None
        if array is None or array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] not in (1, 3):
            found = "no arr_0" if array is None else f"arr_0 {array.dtype} {array.shape}"
            raise ConfigError(f"{self.setting}={self.path} has {found}; expected uint8 images N x H x W x C (C 1 or "
                              f"3) under arr_0.")
        return array

    def describe(self, count: int) -> str:
        origin = (f" (exported by sngan_repro.sample from {self.export['checkpoint']} at g_step {self.export['g_step']}"
                  f": {self.export['images']})" if self.export else "")
        return f"the first {count} of the {self.count} images of {self.name}{origin}"

    @cached_property
    def digest(self) -> str:
        """A digest of the content (the cache key of its features), over file names and bytes; read once, though every
        metric object of a preset prepares from it."""
        digest = hashlib.sha1()
        for file in [self.path] if self._array is not None else self.files:
            digest.update(str(file.relative_to(self.path) if self._array is None else file.name).encode())
            digest.update(file.read_bytes())
        return digest.hexdigest()[:16]

    def batches(self, count: int, batch_size: int):
        """The first ``count`` images, uint8 (B, C, H, W), in batches of ``batch_size``."""
        if count > self.count:
            raise ConfigError(f"{self.setting}={self.path} holds {self.count} images but {count} are needed; give at "
                              f"least {count} or a metrics preset with fewer samples.")
        for start in range(0, count, batch_size):
            stop = min(start + batch_size, count)
            if self._array is not None:
                chunk = self._array[start:stop]
            else:
                chunk = np.stack([self._read_file(file) for file in self.files[start:stop]])
            yield torch.from_numpy(np.ascontiguousarray(chunk)).permute(0, 3, 1, 2)

    def _read_file(self, file: Path) -> np.ndarray:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("L" if self.channels == 1 else "RGB"))
        if pixels.shape[:2] != (self.image_size, self.image_size):
            raise ConfigError(f"{self.setting}={self.path} mixes image sizes ({file.name} is {pixels.shape[1]}x"
                              f"{pixels.shape[0]}, the first {self.image_size}x{self.image_size}); give images of one "
                              f"size.")
        return pixels[..., None] if pixels.ndim == 2 else pixels

    # the datamodule's interface, as the real side of the metrics
    def prepare_data(self) -> None:
        pass

    def iter_images(self, which: str = "train", limit: int | None = None, batch_size: int = 256):
        return self.batches(self.count if limit is None else min(limit, self.count), batch_size)
