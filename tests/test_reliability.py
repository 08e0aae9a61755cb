"""Reliability: what a crash, a kill or a full disk while writing leaves behind."""

import errno

import pytest
import torch
from conftest import tiny_run_overrides

from sngan_repro import compose
from sngan_repro.checkpointing import AtomicCheckpointIO
from sngan_repro.config import check_checkpoint
from sngan_repro.errors import DiskFullError
from sngan_repro.train import run


def _fail_half_way(monkeypatch, should_fail):
    """torch.save as the checkpoint writer calls it, except that when ``should_fail(checkpoint)`` it writes half of
    the bytes and then hits a full disk (as a kill or a crash mid-write would leave the file)."""
    save = torch.save

    def failing_save(obj, file, *args, **kwargs):
        if not should_fail(obj):
            return save(obj, file, *args, **kwargs)
        file.write(b"PK\x03\x04" + b"\0" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("sngan_repro.checkpointing.torch.save", failing_save)


def test_a_write_that_fails_half_way_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path, io = tmp_path / "run" / "last.ckpt", AtomicCheckpointIO()
    io.save_checkpoint({"step": torch.tensor(1)}, path)
    _fail_half_way(monkeypatch, lambda checkpoint: True)
    with pytest.raises(DiskFullError, match=rf"^The disk filled up while writing the checkpoint {path}: the earlier "
                                            rf"ones stay; free space and resume with ckpt_path={path}\.$"):
        io.save_checkpoint({"step": torch.tensor(2)}, path)
    assert torch.load(path, weights_only=True)["step"].item() == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]  # no staging file left behind


def test_a_run_whose_checkpoint_write_fails_keeps_the_last_good_one(tmp_path, monkeypatch):
    """Checkpoints every 2 updates; writing the one of update 4 fails half-way on a full disk. The run stops with
    one sentence, and its last.ckpt is update 2's: it passes the resume check and resumes from update 2."""
    _fail_half_way(monkeypatch, lambda checkpoint: checkpoint["gan_counters"]["g_step"] == 4)
    cfg = compose(tiny_run_overrides(tmp_path, 6, "logger=none", "train.checkpoint_every=2"))
    with pytest.raises(DiskFullError, match=r"^The disk filled up while writing the checkpoint .*g_step=0000004\.ckpt: "
                                            r"the earlier ones stay; free space and resume with ckpt_path=.*"
                                            r"(last|g_step=0000002)\.ckpt\.$"):
        run(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    check_checkpoint(last)
    assert torch.load(last, weights_only=True)["gan_counters"]["g_step"] == 2
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    monkeypatch.undo()
    assert run(cfg).g_step == 6  # the same command continues from update 2
