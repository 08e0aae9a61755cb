"""`make gpu-check` (scripts/gpu_check.py): its CPU smoke run goes through every section and writes the JSON with
every field measured; a failed check is recorded (and sets the exit code) instead of stopping the others; a
machine without CUDA gets one sentence instead of a traceback."""

import importlib.util
import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from helpers.combinations import REFUSED, combination_overrides

ROOT = Path(__file__).resolve().parent.parent

ENVIRONMENT = {"versions", "commit", "uncommitted_changes", "torch_cuda_build", "cudnn", "device", "threads",
               "device_name", "visible_gpus"}
COMBINATION = {"family", "norm", "status", "detail", "seconds"}
ACCELERATION = COMBINATION | {"option", "tolerance", "relative_loss_difference", "skipped_updates"}
SCORES = {"status", "samples", "on_cpu", "on_device", "largest_relative_difference", "seconds", "checkpoint_on_device"}
TRAINING = {"arch", "option", "image_size", "batch", "ratio", "ratio_quartiles", "ours_ms", "plain_ms", "ours_it_per_s",
            "plain_it_per_s", "speedup_over_float32", "peak_memory_mb", "ours_fraction_of_matmul",
            "plain_fraction_of_matmul"}


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _measured(value, where: str = "") -> None:
    """Every leaf is a real value: no None, no empty text but a passed check's detail, no empty list but the host
    transfers found (none is the target), every number finite."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key == "detail" and value.get("status") == "passed" and item == ""):
                _measured(item, f"{where}.{key}")
    elif isinstance(value, list):
        assert value or where.endswith(".calls"), where
        for index, item in enumerate(value):
            _measured(item, f"{where}[{index}]")
    else:
        assert value is not None and value != "", where
        if isinstance(value, float):
            assert math.isfinite(value), where


@pytest.mark.slow
def test_the_cpu_smoke_run_checks_and_measures_every_field(tmp_path, capsys):
    """The correctness and speed sections. The two-process and packing sections are left out to keep the suite's
    time: what they check, ``assert_ranks_equal`` on a two-rank run and the launcher's ``runs_per_gpu``, is tested in
    test_distributed and test_launchers, and their own runs (about 25 s each) are left to
    ``scripts/gpu_check.py --device cpu --smoke``, which runs every section; their recording is tested below."""
    script = _script()
    returned = script.main(["--device", "cpu", "--smoke", "--sections", "correctness", "speed", "--output",
                            str(tmp_path / "check_{device}.json")])
    written = json.loads((tmp_path / "check_cpu.json").read_text())
    assert written == json.loads(json.dumps(returned)) and written["smoke"] is True
    assert set(written) == {"smoke", "environment", "targets", "correctness", "speed", "seconds"}
    _measured(written)

    found = written["environment"]
    assert set(found) == ENVIRONMENT
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a source checkout: the commit is git's own answer
        assert found["commit"] == head.stdout.strip()
    assert found["versions"]["torch"] == torch.__version__ and found["device"] == "cpu"
    assert written["targets"] == {"critic_update_ratio_max": {"sn": 1.05, "san": 1.10}, "ours_over_plain_max": 1.02,
                                  "bf16_speedup_on_resnet_min": 1.5, "host_synchronizations_max": 0,
                                  "scores_relative_difference_max": 1e-4}

    # correctness: the smoke's combinations, a refusal recorded with the config's own sentence, the rest passed
    checks = written["correctness"]
    assert [(row["family"], row["norm"]) for row in checks["combinations"]] == [
        (family, norm) for family in script.SMOKE.families for norm in script.SMOKE.norms]
    for row in checks["combinations"]:
        assert set(row) == COMBINATION
        if (row["family"], row["norm"]) in REFUSED:
            assert row["status"] == "refused" and row["detail"].startswith("BEGAN's autoencoder critic takes no")
        else:
            assert row["status"] == "passed", row
    [accelerated] = checks["accelerations"]
    assert set(accelerated) == ACCELERATION and accelerated["status"] == "passed"
    assert accelerated["tolerance"] == 2e-2 and accelerated["skipped_updates"] == {}  # bf16 needs no loss scaling
    assert set(accelerated["relative_loss_difference"]) == {"first", "last"}
    assert max(accelerated["relative_loss_difference"].values()) <= 2e-2
    scores = checks["scores"]
    assert set(scores) == SCORES and scores["status"] == "passed"
    assert set(scores["on_cpu"]) == set(scores["on_device"]) == {"is/10_2splits", "is/10_2splits_std",
                                                                  "fid/10_vs_train10"}
    assert scores["on_cpu"] == scores["on_device"] and scores["largest_relative_difference"] == 0  # one device here
    assert scores["on_cpu"]["fid/10_vs_train10"] > 0 and scores["on_cpu"]["is/10_2splits"] > 1  # not degenerate

    measured = written["speed"]
    assert set(measured["critic_update"]) == {"none", "sn", "san", "wn", "gp"}
    assert measured["critic_update"]["none"]["ratio"] == 1.0
    assert [(row["arch"], row["option"]) for row in measured["training"]] == [
        ("sngan_cnn", "none"), ("sngan_cnn", "trainer.precision=bf16-mixed")]
    for row in measured["training"]:
        assert set(row) == TRAINING and set(row["peak_memory_mb"]) == {"ours", "plain"}
        assert row["ours_it_per_s"] == pytest.approx(1000 / row["ours_ms"])
        assert row["speedup_over_float32"] == pytest.approx(measured["training"][0]["ratio"] / row["ratio"])
    assert measured["inception"]["images"] == 4 and measured["inception"]["images_per_s"] > 0
    for norm in ("sn", "san_reparametrization"):  # 12 updates logging at 5, 10 and 12: 9 quiet ones, no transfer
        assert measured["host_synchronizations"][norm] == {"quiet_steps": 9, "synchronizations": 0, "calls": []}

    assert set(written["seconds"]) == {"correctness", "speed"}

    printed = capsys.readouterr().out
    assert f"commit {found['commit']}" in printed and str(tmp_path / "check_cpu.json") in printed
    for target in ("(target <= 1.05)", "(target <= 1.1)", "(target <= 1.02", "(target 0)", "(target <= 1e-4)"):
        assert target in printed
    assert (tmp_path / "check_cpu.log").stat().st_size > 0  # the runs' own output, kept out of the table


def test_a_failed_check_is_recorded_with_its_reason_and_sets_the_exit_code(tmp_path, monkeypatch):
    script = _script()

    def broken(module, initial):
        raise AssertionError("sigma 1.3 after the updates")

    monkeypatch.setitem(script.CHECKS, "sn", broken)
    row, module, first = script.checked_run([*combination_overrides("standard_cnn", "sn", tmp_path)], "sn")
    assert module is None and first == {} and row["status"] == "failed"
    assert row["detail"].startswith("AssertionError at test_gpu_check.py:") and "sigma 1.3 after the updates" in row[
        "detail"]
    assert script.failed_checks({"correctness": {"combinations": [row]}})
    assert not script.failed_checks({"correctness": {"combinations": [{**row, "status": "refused"}]}})


def test_a_section_that_breaks_is_recorded_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    script = _script()

    def broken(sizes, device, folder):
        raise RuntimeError("NCCL error: unhandled system error")

    def packed(sizes, device, folder):
        return {"status": "passed", "detail": "", "runs": 1, "steps": 2, "runs_per_hour": {"1": 10.0},
                "best_runs_per_gpu": 1}

    monkeypatch.setattr(script, "two_processes", broken)
    monkeypatch.setattr(script, "packing", packed)
    with pytest.raises(SystemExit) as stopped:
        script.main(["--device", "cpu", "--smoke", "--sections", "two_processes", "packing", "--output",
                     str(tmp_path / "check_{device}.json")])
    assert stopped.value.code == 1
    written = json.loads((tmp_path / "check_cpu.json").read_text())
    assert written["two_processes"] == {"status": "failed",
                                        "detail": "RuntimeError: NCCL error: unhandled system error"}
    assert written["packing"]["status"] == "passed" and set(written["seconds"]) == {"two_processes", "packing"}
    printed = capsys.readouterr().out
    assert "the two_processes section stopped: RuntimeError: NCCL error" in printed
    assert "two processes            failed RuntimeError: NCCL error: unhandled system error" in printed
    assert "Traceback" in (tmp_path / "check_cpu.log").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_without_cuda_it_says_so_in_one_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        _script().main(["--output", str(tmp_path / "x_{device}.json")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: make gpu-check needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False); on a CPU, "
        "scripts/gpu_check.py --device cpu --smoke runs every check at tiny sizes.")
    assert not list(tmp_path.iterdir())
