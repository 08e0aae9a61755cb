"""The shared machinery of every dataset: uint8 images, a seeded held-out split, a resumable
seeded sampler, and conversion to the generator's pixel range on the device.

A concrete datamodule says how to obtain its images (``load_dataset``, or ``load_images`` for
datasets small enough to hold as one uint8 tensor) and how to make them available on disk
(``prepare_data``). The training stream is endless: run length is counted in generator
updates, not epochs.
"""

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from torchvision import transforms

from ..distributed import rank_share
from ..errors import ConfigError, DatasetUnavailableError
from .pixels import uint8_to_range


class InMemoryImages(Dataset):
    """A uint8 tensor (N, C, H, W); batches are gathered by one indexing op (``__getitems__``)."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected a uint8 (N, C, H, W) tensor, got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return self.images[torch.as_tensor(indices)]


class ImagesOnly(Dataset):
    """A torchvision dataset of (image, target) pairs seen as images only."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.dataset[index][0]


class _Indices(Dataset):
    """The positions 0..size-1 of an ``InMemoryImages``; batches are index tensors (the device-resident path)."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        return torch.as_tensor(indices)


def _keep_batch(batch: torch.Tensor) -> torch.Tensor:
    """Collate for ``InMemoryImages``: ``__getitems__`` already returns the stacked batch."""
    return batch


def subset(dataset: Dataset, indices: torch.Tensor) -> Dataset:
    if isinstance(dataset, InMemoryImages):
        return InMemoryImages(dataset.images[indices])
    return Subset(dataset, indices.tolist())


def heldout_split(size: int, heldout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, held-out indices): a permutation seeded by ``seed`` alone, so the
    held-out set is the same in every run of every method; both lists sorted."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    return order[heldout:].sort().values, order[:heldout].sort().values


class _ConvertMode:
    """PIL mode conversion as a picklable transform (DataLoader workers may be spawned)."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image):
        return image.convert(self.mode)


def pil_to_uint8(image_size: int, channels: int, crop: int | None = None) -> transforms.Compose:
    """PIL image -> uint8 (C, image_size, image_size): center crop to ``crop`` then resize, or
    (no ``crop``) resize the shorter side to ``image_size`` then center crop."""
    steps = [_ConvertMode("L" if channels == 1 else "RGB")]
    if crop:
        steps += [transforms.CenterCrop(crop), transforms.Resize(image_size)]
    else:
        steps += [transforms.Resize(image_size), transforms.CenterCrop(image_size)]
    return transforms.Compose(steps + [transforms.PILToTensor()])


def unavailable(name: str, root, why: str, how: str) -> DatasetUnavailableError:
    """The sentence for a dataset that is not on disk and could not be had: where it was looked for, why it was not
    downloaded, how to provide it, and what runs without it."""
    return DatasetUnavailableError(f"{name} was not found (or is corrupt) in {Path(root).resolve()} and {why}; "
                                   f"{how.rstrip('.')}; offline, the embedded digits need no download "
                                   f"(dataset=digits, as make demo runs).")


def open_downloadable(open_dataset, name: str, root, download: bool, how: str):
    """Call a torchvision dataset constructor; a missing, corrupt or undownloadable dataset
    becomes one sentence saying where we looked and how to provide it."""
    try:
        return open_dataset()
    except (RuntimeError, OSError) as error:  # absent or corrupt: RuntimeError; offline: URLError (an OSError)
        why = f"the download failed ({error})" if download else "dataset.download is false"
        raise unavailable(name, root, why, how) from error


class ResumableSampler(Sampler[int]):
    """An endless stream of dataset indices: pass p is a permutation seeded by (seed, p).

    The passes follow each other as one global stream; rank r of w takes its positions r, r + w,
    r + 2w, ..., so the ranks' k-th batches are together the k-th global batch of a single process
    (and resuming on another number of ranks continues the same stream). The stream starts at
    ``start`` indices into this rank's share, which is how a resumed run continues exactly where
    the checkpoint left it.
    """

    def __init__(self, size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.start = size, seed, start
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[int]:
        pass_index, offset = divmod(self.start * self.world_size + self.rank, self.size)
        while True:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + pass_index))
            yield from order[offset :: self.world_size].tolist()
            # the first position of the next pass that is this rank's
            offset = (offset - self.size) % self.world_size
            pass_index += 1


class ImageDataModule(pl.LightningDataModule):
    """Base of all datamodules: an endless, seeded, resumable stream of image batches.

    Images are uint8 until they reach the device, where they are mapped to ``value_range`` (the
    generator's output range). ``heldout`` images, chosen by a permutation seeded with
    ``heldout_seed`` only, are set aside (``heldout_set``, e.g. for the reconstruction metric)
    and never enter training. The number of batches handed to training is part of the
    checkpoint, so a resumed run draws the same batches as an uninterrupted one.

    ``device_resident``: the whole uint8 training set is copied once to the training device and each batch is
    gathered there, so only the batch's indices cross from the host (no image copies, no collation). The
    indices come from the same sampler, so the batches are those of the DataLoader path. It needs a dataset
    held in memory (``load_images``), within half the device's free memory.
    """

    name = "dataset"

    def __init__(self, image_size: int, channels: int, batch_size: int = 64,
                 value_range: Sequence[float] = (-1.0, 1.0), seed: int = 0, num_workers: int = 0,
                 heldout: int = 0, heldout_seed: int = 0, device_resident: bool = False):
        super().__init__()
        if channels not in (1, 3):
            raise ConfigError(f"dataset.channels={channels} is not supported; accepted: 1 or 3.")
        if heldout < 0:
            raise ConfigError(f"dataset.heldout={heldout} must be a number of images >= 0.")
        self.image_size, self.channels = image_size, channels
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.heldout, self.heldout_seed = heldout, heldout_seed
        self.value_range = tuple(float(v) for v in value_range)
        self.device_resident = device_resident
        self._device_images: torch.Tensor | None = None
        self.batches_consumed = 0
        self.train_set: Dataset | None = None
        self.heldout_set: Dataset | None = None

    # -- what subclasses provide ---------------------------------------------------------
    def load_dataset(self) -> Dataset:
        """Every image of the dataset (before the held-out split), each a uint8 (C, H, W) tensor."""
        return InMemoryImages(self.load_images())

    def load_images(self) -> torch.Tensor:
        """For small datasets: all images as one uint8 tensor (N, C, H, W)."""
        raise NotImplementedError

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        dataset = self.load_dataset()
        if self.heldout >= len(dataset):
            raise ConfigError(f"dataset.heldout={self.heldout} leaves no training images of the {len(dataset)}.")
        if len(dataset) - self.heldout < self.batch_size:
            raise ConfigError(f"train.batch_size={self.batch_size} exceeds the {len(dataset) - self.heldout} "
                              f"training images of {self.name}.")
        if self.device_resident and not isinstance(dataset, InMemoryImages):
            raise ConfigError(f"dataset.device_resident=true needs a dataset held in memory as one tensor, but "
                              f"{self.name} is read image by image from files; use dataset.device_resident=false.")
        train, heldout = heldout_split(len(dataset), self.heldout, self.heldout_seed)
        self.train_set = subset(dataset, train)
        self.heldout_set = subset(dataset, heldout) if self.heldout else None

    def train_dataloader(self) -> DataLoader:
        self.setup()
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        per_rank = rank_share("train.batch_size", self.batch_size, world_size)
        sampler = ResumableSampler(len(self.train_set), self.seed, start=self.batches_consumed * per_rank,
                                   rank=rank, world_size=world_size)
        if self.device_resident:  # batches of indices, gathered on the device (on_after_batch_transfer)
            return DataLoader(_Indices(len(self.train_set)), batch_size=per_rank, sampler=sampler, drop_last=True,
                              collate_fn=_keep_batch)
        in_memory = isinstance(self.train_set, InMemoryImages)
        return DataLoader(self.train_set, batch_size=per_rank, sampler=sampler, drop_last=True,
                          num_workers=self.num_workers, collate_fn=_keep_batch if in_memory else None,
                          persistent_workers=self.num_workers > 0, pin_memory=torch.cuda.is_available())

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        if self.trainer is not None and self.trainer.training:
            self.batches_consumed += 1
        return batch

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if self.device_resident and self.trainer is not None and self.trainer.training:
            batch = self.resident_images(batch.device)[batch]
        # in the module's floating type (e.g. trainer.precision=64-true)
        return self.to_value_range(batch, self.trainer.lightning_module.dtype if self.trainer else torch.float32)

    def resident_images(self, device: torch.device) -> torch.Tensor:
        """The uint8 training set on ``device``, copied there at the first call."""
        if self._device_images is None or self._device_images.device != device:
            images = self.train_set.images
            if device.type == "cuda" and images.nbytes > torch.cuda.mem_get_info(device)[0] / 2:
                raise ConfigError(f"dataset.device_resident=true would put {images.nbytes / 2**30:.1f} GiB of "
                                  f"{self.name} on {device}, over half its free memory; use "
                                  f"dataset.device_resident=false.")
            self._device_images = images.to(device)
        return self._device_images

    def state_dict(self) -> dict:
        return {"batches_consumed": self.batches_consumed}

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches_consumed = int(state_dict["batches_consumed"])

    # -- helpers ---------------------------------------------------------------------------
    def to_value_range(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 [0, 255] -> ``dtype`` in ``value_range``."""
        return uint8_to_range(images, self.value_range, dtype)

    def iter_images(self, which: str = "train", limit: int | None = None, batch_size: int = 256):
        """Batches of up to ``limit`` images of the training or held-out set, uint8 (B, C, H, W);
        a sample seeded by ``heldout_seed`` when ``limit`` is below the set's size."""
        self.setup()
        dataset = self.train_set if which == "train" else self.heldout_set
        if dataset is None:
            raise ConfigError(f"{self.name} has no held-out images; set dataset.heldout > 0.")
        indices = torch.arange(len(dataset))
        if limit is not None and limit < len(dataset):
            indices = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(self.heldout_seed))[:limit]
        if isinstance(dataset, InMemoryImages):
            yield from dataset.images[indices].split(batch_size)
            return
        yield from DataLoader(Subset(dataset, indices.tolist()), batch_size=batch_size, num_workers=self.num_workers)

    def images(self, which: str = "train", limit: int | None = None) -> torch.Tensor:
        """``iter_images`` as one tensor."""
        return torch.cat(list(self.iter_images(which, limit)))

    def channel_statistics(self, limit: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of (up to ``limit``) training images in ``value_range`` units."""
        pixels = uint8_to_range(self.images("train", limit).transpose(0, 1).flatten(1), self.value_range, torch.float64)
        return pixels.mean(1).float(), pixels.std(1).float()


class TorchvisionPILDataModule(ImageDataModule):
    """A datamodule over a torchvision dataset of (PIL image, target) pairs read image by image (CelebA, LSUN), each
    image cropped and resized by ``pil_to_uint8`` with the subclass's ``crop``. A subclass opens its dataset in
    ``open_dataset``, which ``prepare_data`` calls to check that it is there."""

    crop: int | None = None

    def open_dataset(self, transform=None) -> Dataset:
        raise NotImplementedError

    def prepare_data(self) -> None:
        self.open_dataset()

    def load_dataset(self) -> Dataset:
        return ImagesOnly(self.open_dataset(pil_to_uint8(self.image_size, self.channels, self.crop)))
