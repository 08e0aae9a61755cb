"""The documentation keeps working: README.md and docs/*.md link to files and headings that exist, every
`sngan_repro.train` / `sngan_repro.evaluate` command in their bash blocks composes (every run of a sweep), the
performance tables are the rendering of benchmarks/*.json, the documented hook signatures are the code's, the
"Adding a normalization" example passes the project's linter as pasted, the "Loading a checkpoint" recipe runs,
and both commands' --help lists what the command reads."""

import importlib.util
import inspect
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tiny_run_overrides

from sngan_repro import compose
from sngan_repro.config import CONFIG_DIR
from sngan_repro.sweep_datasets import job_overrides

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^[ \t]*```(?P<lang>[\w-]*)\n(?P<body>.*?)^[ \t]*```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) +(?P<text>.+?) *$", re.MULTILINE)
# a command of the project; `python` alone (without .venv/bin/) fails on a fresh machine
COMMAND = re.compile(r"\.venv/bin/python -m sngan_repro\.(?P<program>train|evaluate|sample)\b(?P<arguments>.*)")
BARE_PYTHON = re.compile(r"(?<![\w/.-])python (?:-m |scripts/)")
# placeholders a reader replaces (`<date>`, `<path>`, ...): replaced by a word Hydra reads, so that the rest composes
PLACEHOLDER = re.compile(r"<[\w .-]+>")


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_code(text: str) -> str:
    """``text`` without its fenced code blocks (a `# comment` in a block is no heading)."""
    return FENCE.sub("", text)


def _blocks(path: Path, *langs: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(path.read_text()) if m["lang"] in langs]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: the text of its links, lowercase, punctuation (code and emphasis marks among it)
    dropped but hyphens and underscores, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors, seen = set(), {}
    for match in HEADING.finditer(_without_code(path.read_text())):
        slug = _slug(match["text"])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _commands(path: Path) -> list[tuple[str, list[str]]]:
    """(program, argv) of every train/evaluate command in the file's code blocks (continued lines joined): the
    commands to type, and those a console shows (the demo's summary prints the next commands)."""
    commands = []
    for block in _blocks(path, "bash", "sh", "shell", "text", ""):
        for line in block.replace("\\\n", " ").splitlines():
            match = COMMAND.search(line)
            if match:
                commands.append((match["program"], shlex.split(match["arguments"], comments=True)))
    return commands


def _composable(argv: list[str]) -> tuple[list[str], bool] | None:
    """The overrides of a command line and whether it is a sweep; None for --help, whose output is tested below."""
    if {"--help", "-h", "--hydra-help"} & set(argv):
        return None
    overrides, skip_next, sweep = [], False, False
    for argument in argv:
        if skip_next:
            skip_next = False
        elif argument in ("-m", "--multirun"):
            sweep = True
        elif argument in ("--cfg", "-c", "--package", "-p"):
            skip_next = True  # Hydra's flags with a value: `--cfg job`
        elif re.fullmatch(r"<[^>]*>|\[.*\]", argument):
            continue  # a syntax diagram's `<overrides>` or optional `[metrics=<preset>]` (docs/extending.md's flow)
        else:
            overrides.append(PLACEHOLDER.sub("placeholder", argument))
    return overrides, sweep


# --- links, anchors, commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_links_resolve_to_files_and_headings(path):
    broken = []
    for match in LINK.finditer(_without_code(path.read_text())):
        target = match["target"]
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif anchor and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{path.name}: {broken}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_bare_python(path):
    """Every command runs with .venv/bin/python: a bare `python` is not the one the project is installed in."""
    lines = [line for line in path.read_text().splitlines() if BARE_PYTHON.search(line)]
    assert not lines, f"{path.name}: use .venv/bin/python in {lines}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_commands_compose(path):
    """Each train/evaluate command composes as the command line would (every run of a sweep). Placeholders
    (`<date>`, `<time>`, `<path>`, ...) are replaced by a word, so a command whose checkpoint path is a placeholder
    composes (compose does not open the checkpoint); a group option must not be a placeholder. Not composed: the
    commands with --help (their output is tested below), and in a syntax diagram an argument that is only a
    placeholder (`<overrides>`) or optional (`[metrics=<preset>]`)."""
    failures, composed = [], 0
    for program, argv in _commands(path):
        parsed = _composable(argv)
        if parsed is None:
            continue
        overrides, sweep = parsed
        runs = job_overrides(overrides) if sweep else [overrides]
        assert sweep or len(runs) == 1
        for run in runs:
            try:
                compose(run, config_name=program)
                composed += 1
            except Exception as error:  # the sentence is the report
                failures.append(f"{program} {shlex.join(run)}: {error}")
    assert not failures, "\n".join(failures)
    if path.name in ("README.md", "training.md", "configuration.md", "metrics.md"):
        assert composed, f"{path.name}: no command found (the pattern no longer matches the documentation?)"


def test_make_targets_and_sweeps_exist():
    """`make <target>` and `scripts/sweep.py <name>` in code blocks name a Makefile target and a sweep, every sweep
    is listed in the README's and docs/configuration.md's lists, and the scripts named exist."""
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    sweeps = set(_load_script("sweep").SWEEPS)
    for path in DOCS:
        for block in _blocks(path, "bash", "sh", "shell"):
            for target in re.findall(r"^make ([\w-]+)", block, re.MULTILINE):
                assert target in targets, f"{path.name}: make {target}"
            for name in re.findall(r"scripts/sweep\.py (\w+)", block):
                assert name in sweeps, f"{path.name}: scripts/sweep.py {name}"
            for script in re.findall(r"(scripts/\w+\.py)", block):
                assert (ROOT / script).is_file(), f"{path.name}: {script}"
    for doc in ("README.md", "docs/configuration.md"):
        text = (ROOT / doc).read_text()
        missing = sorted(name for name in sweeps if f"`{name}`" not in text)
        assert not missing, f"{doc} does not list the sweeps {missing}"


def test_bench_duration_is_one_number():
    """`make bench`'s duration: the Makefile's comment and the docs say the same."""
    makefile = (ROOT / "Makefile").read_text()
    # the comment above the bench target (the one that says what it measures: the speed baselines)
    (duration,) = re.findall(r"^# Speed baselines.*?(about \d+ minutes on \d+ CPU cores)", makefile, re.MULTILINE)
    texts = {path.name: path.read_text() for path in DOCS}
    mentions = {name: re.findall(r"`make bench` \(([^)]*)\)", text) for name, text in texts.items()}
    assert mentions["performance.md"] == [duration]
    assert all(found == [duration] for found in mentions.values() if found), mentions


# --- performance tables ---------------------------------------------------------------------------------------


def test_performance_tables_are_the_benchmarks_rendering():
    tables = _load_script("performance_tables")
    text = (ROOT / "docs" / "performance.md").read_text()
    names = [match["name"] for match in tables.BLOCK.finditer(text)]
    assert sorted(names) == sorted(tables.RENDERERS), "every benchmark table has its markers, once"
    assert text == tables.rendered(text), "run .venv/bin/python scripts/performance_tables.py after make bench"
    for match in tables.BLOCK.finditer(text):  # and the rendering holds the JSON's numbers (e.g. a ratio)
        assert "| " in match["body"]


def test_performance_tables_check_flag(tmp_path):
    """--check passes on the committed doc and fails, without writing, on a doc whose table was edited by hand."""
    script = ROOT / "scripts" / "performance_tables.py"
    ok = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    edited = tmp_path / "performance.md"
    original = (ROOT / "docs" / "performance.md").read_text().replace("| standard CNN | sn |", "| standard CNN | SN |")
    edited.write_text(original)
    stale = subprocess.run([sys.executable, script, "--check", "--doc", edited], capture_output=True, text=True,
                           timeout=60)
    assert stale.returncode == 1 and "differs" in stale.stderr and edited.read_text() == original


# --- the extending guide --------------------------------------------------------------------------------------


def _section(path: Path, title: str) -> str:
    text = path.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _signature(function) -> str:
    """``name(a, b=None)``: a method's parameters without ``self`` and annotations, as the documentation writes it."""
    parameters = []
    for parameter in list(inspect.signature(function).parameters.values())[1:]:
        prefix = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}.get(parameter.kind, "")
        default = "" if parameter.default is inspect.Parameter.empty else f"={parameter.default!r}"
        parameters.append(f"{prefix}{parameter.name}{default}")
    return f"{function.__name__}({', '.join(parameters)})"


def _base_classes():
    from sngan_repro.data.base import ImageDataModule
    from sngan_repro.losses import GANLoss
    from sngan_repro.metrics import Metric
    from sngan_repro.normalizations import Normalization

    return {"Adding a normalization": (Normalization, {"wrap_weight_layer", "feature_layer", "penalty",
                                                       "after_discriminator_update"}),
            "Adding a metric": (Metric, {"names", "protocols", "prepare", "compute"}),
            "Adding a dataset": (ImageDataModule, {"load_images"}),
            "Adding a loss": (GANLoss, {"discriminator", "generator", "generator_loss", "after_generator_update"})}


@pytest.mark.parametrize("title", ["Adding a normalization", "Adding a metric", "Adding a dataset", "Adding a loss"])
def test_documented_hook_signatures_are_the_code(title):
    """Every `hook(arguments)` of a guide that names a method of the base class is written with the method's
    parameters (names and defaults, without self), and the guide names at least the hooks it must."""
    base, required = _base_classes()[title]
    prose = _without_code(_section(ROOT / "docs" / "extending.md", title))
    documented = {}
    for name, arguments in re.findall(r"`(\w+)\(([^`()]*)\)`", prose):
        if callable(getattr(base, name, None)) and not name.startswith("_"):
            documented[name] = f"{name}({arguments})"
    assert required <= set(documented), f"{title} does not document {sorted(required - set(documented))}"
    wrong = {name: (text, _signature(getattr(base, name))) for name, text in documented.items()
             if text != _signature(getattr(base, name))}
    assert not wrong, f"{title}: documented vs {base.__name__}'s: {wrong}"
    if title == "Adding a normalization":
        assert "`conv_padding_mode`" in prose and hasattr(base, "conv_padding_mode")


def test_extending_examples_pass_the_linter(tmp_path):
    """The guide's Python blocks, "Adding a normalization" first, pass ruff with the project's rules as pasted."""
    blocks = _blocks(ROOT / "docs" / "extending.md", "python")
    normalization = _section(ROOT / "docs" / "extending.md", "Adding a normalization")
    assert any(block in normalization for block in blocks)
    files = []
    for index, block in enumerate(blocks):
        files.append(tmp_path / f"example_{index}.py")
        files[-1].write_text(block)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(ROOT / "pyproject.toml"), *map(str, files)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_loading_a_checkpoint_recipe_runs(tmp_path, monkeypatch):
    """The recipe, pasted, on a checkpoint of a 2-update tiny run: samples of the run's size as uint8 pixels."""
    from sngan_repro.train import run

    module = run(compose(tiny_run_overrides(tmp_path / "run", 2, "logger=none")))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and module.g_step == 2
    section = _section(ROOT / "docs" / "extending.md", "Python API")
    (recipe,) = [block for block in _blocks(ROOT / "docs" / "extending.md", "python")
                 if "load_gan(" in block and block in section]
    placeholder = '"outputs/<date>/<time>/checkpoints/last.ckpt"'
    assert placeholder in recipe
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(recipe.replace(placeholder, repr(str(checkpoint))), "recipe", "exec"), namespace)
    pixels, loaded = namespace["pixels"], namespace["module"]
    import torch

    assert pixels.dtype == torch.uint8 and pixels.shape == (64, 1, 16, 16)
    assert loaded.g_step == 2 and not loaded.generator.training
    assert (tmp_path / "samples.png").is_file()


def test_package_docstring_names_what_exists():
    """The API the package's docstring names exists: `compose`, `build_models`, ... and `module.GAN`."""
    import sngan_repro

    for name in re.findall(r"``(\w+(?:\.\w+)?)\(", sngan_repro.__doc__):
        owner, _, attribute = name.rpartition(".")
        if owner:
            target = importlib.import_module(f"sngan_repro.{owner}")
            assert hasattr(target, attribute), name
        else:
            assert hasattr(sngan_repro, name), name


# --- the commands' help ---------------------------------------------------------------------------------------


def _help(program: str) -> list[str]:
    result = subprocess.run([sys.executable, "-m", f"sngan_repro.{program}", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.slow
def test_evaluate_help_lists_only_what_evaluate_reads():
    out = _help("evaluate")
    presets = sorted(p.stem for p in (CONFIG_DIR / "metrics").glob("*.yaml") if p.stem != "none")
    assert f"metrics: {', '.join(presets)}" in out
    datasets = sorted(p.stem for p in (CONFIG_DIR / "dataset").glob("*.yaml"))
    assert f"datasets: {', '.join(datasets)}" in out
    for setting in ("ckpt=", "images=", "reference=", "dataset=", "metrics=", "output=", "device=", "paths.data_dir="):
        assert any(line.startswith(setting) for line in out), setting
    training_groups = ("arch:", "norm:", "dataset:", "optim:", "loss:", "experiment:", "trainer:", "callbacks:")
    assert not [line for line in out if line.startswith(training_groups)]
    assert out[0].startswith("sngan_repro.evaluate:")


@pytest.mark.slow
def test_train_help_lists_the_sweep_launchers():
    out = _help("train")
    launchers = sorted(["basic", *(p.stem for p in (CONFIG_DIR / "hydra" / "launcher").glob("*.yaml"))])
    assert f"hydra/launcher: {', '.join(launchers)}" in out
    assert "norm: bn, clip, gp, ln, none, ortho, san, sn, wn" in out  # the groups are still listed
