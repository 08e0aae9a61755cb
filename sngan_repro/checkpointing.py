"""Checkpoint files written atomically: a crash, a kill or a full disk while writing leaves the previous file.

Lightning's own writer stages the file in the system's temporary folder and then moves it, which on another
filesystem (a node-local /tmp, a network home) is a copy that can itself be interrupted half-way. Here the file is
written next to its destination, flushed to disk, and renamed over it: a rename within a directory is atomic.
"""

import errno
import os
from pathlib import Path

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem

from .errors import DiskFullError, raised_from

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def checkpoint_folders(trainer) -> list[str]:
    """The folders the trainer's checkpoint callbacks write into."""
    return [callback.dirpath for callback in trainer.checkpoint_callbacks if callback.dirpath]


def newest_checkpoint(*directories) -> Path | None:
    """The most recently written ``*.ckpt`` file in ``directories`` (staging files are not ``*.ckpt``)."""
    found = [path for directory in directories for path in Path(directory).glob("*.ckpt") if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


def disk_full_cause(error: BaseException) -> OSError | None:
    """The full-disk ``OSError`` that ``error`` is or was raised from (Lightning's TensorBoard logger wraps its
    writer's errors in a ValueError), if any."""
    return raised_from(error, lambda cause: isinstance(cause, OSError) and cause.errno in DISK_FULL)


def disk_full_error(what: str, *checkpoint_directories) -> DiskFullError:
    """The sentence for a disk that filled up while writing ``what``, naming the checkpoint to resume from."""
    newest = newest_checkpoint(*checkpoint_directories)
    advice = (f"the checkpoints written before stay; free space and resume with ckpt_path={newest}" if newest else
              "free space and run again")
    return DiskFullError(f"The disk filled up while writing {what}: {advice}.")


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose ``save_checkpoint`` writes ``.<name>.<pid>.tmp`` beside a local file, then renames
    it; remote paths (s3://, ...) keep Lightning's writer."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(staging, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(staging, path)
        except OSError as error:
            if disk_full_cause(error) is None:
                raise
            raise disk_full_error(f"the checkpoint {path}", path.parent) from error
        finally:
            staging.unlink(missing_ok=True)  # only left when writing failed
