# `make demo` and `make test` create the virtual environment when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-quick lint clean digits-settings digits-study bench tensorboard gpu-check

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(PY) -m sngan_repro.train experiment=quickstart

test: $(STAMP)
	$(PY) -m pytest

# the dashboards of every run (outputs/) and sweep (multirun/) in this folder, at http://localhost:6006
tensorboard: $(STAMP)
	mkdir -p outputs multirun
	$(VENV)/bin/tensorboard --logdir_spec outputs:outputs,multirun:multirun

# Miyato et al.'s robustness to optimizer settings A-F in miniature on the embedded digits (offline, <= 20 min on
# 2 CPU cores: the sweep's two commands side by side, then its report in multirun/digits_settings/<time>/report)
digits-settings: $(STAMP)
	$(PY) scripts/sweep.py digits_settings --jobs 2 --report

# Speed baselines (docs/performance.md; about 45 minutes on 2 CPU cores): each normalization's critic update against
# norm=none, our training run against a hand-written loop (also on the quickstart's tiny model), and the
# accelerations; JSON in benchmarks/, rendered into docs/performance.md by scripts/performance_tables.py
ACCELERATIONS := 'trainer.precision=bf16-mixed' 'train.channels_last=true' 'train.compile=true' \
	'dataset.device_resident=true'
bench: $(STAMP)
	$(PY) scripts/bench_norms.py --methods none sn san wn gp --output 'benchmarks/critic_update_{device}.json'
	$(PY) scripts/bench_train.py --experiments --output 'benchmarks/train_{device}.json'
	$(PY) scripts/bench_train.py --no-grid --experiments quickstart --pairs 15 \
		--output 'benchmarks/train_quickstart_{device}.json'
	$(PY) scripts/bench_train.py --archs sngan_cnn --norms sn --experiments --options $(ACCELERATIONS) \
		--output 'benchmarks/accelerations_{device}.json'

# the first minutes on a GPU (scripts/gpu_check.py; docs/performance.md): every family x normalization and each
# acceleration checked on the device, the speed ratios against their targets, two ranks, runs per hour per
# runs_per_gpu; benchmarks/gpu_check_cuda.json and a table; without CUDA, one sentence
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py

# the suite without the tests marked slow (see the marker in pyproject.toml); CI runs `make test`
test-quick: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check sngan_repro tests scripts

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache

# the offline mini-study (conf/study/digits.yaml): two runs at a time, one thread each (faster than one run on both
# cores for these small networks); again to continue it after an interruption; then its report
digits-study: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m sngan_repro.train -m study=digits hydra/launcher=local hydra.sweeper.batch=2
	$(PY) -m sngan_repro.report multirun/studies/digits
