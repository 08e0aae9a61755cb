"""`make gpu-check` (scripts/gpu_check.py): its CPU smoke run writes the JSON with every field measured, and a
machine without CUDA gets one sentence instead of a traceback."""

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_smoke_run_writes_every_environment_field(tmp_path, capsys):
    output = tmp_path / "check_{device}.json"
    returned = _script().main(["--device", "cpu", "--smoke", "--output", str(output)])
    written = json.loads((tmp_path / "check_cpu.json").read_text())
    assert written == json.loads(json.dumps(returned)) and written["smoke"] is True
    found = written["environment"]
    assert set(found) == {"versions", "commit", "uncommitted_changes", "torch_cuda_build", "cudnn", "device",
                          "threads", "device_name", "visible_gpus"}
    assert all(value not in (None, "") for value in found.values())  # measured, no placeholders
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a source checkout: the commit is git's own answer
        assert found["commit"] == head.stdout.strip()
    assert found["versions"]["torch"] == torch.__version__ and found["device"] == "cpu"
    assert found["threads"] == torch.get_num_threads()
    printed = capsys.readouterr().out
    assert f"commit {found['commit']}" in printed and str(tmp_path / "check_cpu.json") in printed


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_without_cuda_it_says_so_in_one_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        _script().main(["--output", str(tmp_path / "x_{device}.json")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: make gpu-check needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False); on a CPU, "
        "scripts/gpu_check.py --device cpu --smoke runs every check at tiny sizes.")
    assert not list(tmp_path.iterdir())
