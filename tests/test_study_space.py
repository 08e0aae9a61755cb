"""A study's search space and draws (sngan_repro.study.space): the same seed gives the same draws, also when the
study is resumed or shared; the draws follow the declared distributions; bad spaces are refused in one sentence."""

import math

import numpy as np
import optuna
import pytest

from sngan_repro import compose
from sngan_repro.errors import ConfigError
from sngan_repro.study.space import Parameter, as_overrides, ask, make_sampler, published_setting, search_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
LUCIC = {"optim.lr_g": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},  # Lucic et al. 2018, Sec. 4
         "optim.lr_d": {"distribution": "uniform", "low": 0.0, "high": 1.0},  # (a uniform parameter; beta1: later)
         "optim.n_dis": {"distribution": "choice", "choices": [1, 5]}}


@pytest.fixture(scope="module")
def training_config():
    return compose(["experiment=quickstart"])


def _draws(parameters, seed: int, count: int, method: str = "sn", storage=None, name: str = "s") -> list[dict]:
    study = optuna.create_study(storage=storage, study_name=name, sampler=make_sampler("random", seed, method),
                                load_if_exists=True)
    draws = []
    for _ in range(count):
        trial = ask(study, parameters)
        study.tell(trial, 0.0)
        draws.append(trial.params)
    return draws


def test_the_same_seed_gives_the_same_draws_and_another_seed_others(training_config):
    parameters = search_space(LUCIC, "study.space", training_config)
    first, again, other = _draws(parameters, 0, 20), _draws(parameters, 0, 20), _draws(parameters, 1, 20)
    assert first == again  # exactly: every parameter of every draw
    assert all(a != b for a, b in zip(first, other))
    assert _draws(parameters, 0, 5, method="san") != first[:5]  # each method its own draws


def test_a_resumed_study_continues_with_the_draws_an_uninterrupted_one_makes(training_config, tmp_path):
    """Draws are seeded by (seed, method, draw number) from the storage: a new process (a new sampler) after 7
    draws makes draws 7..11 as one process making 12 does."""
    parameters = search_space(LUCIC, "study.space", training_config)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _draws(parameters, 0, 7, storage=storage)
    resumed = _draws(parameters, 0, 5, storage=storage)
    assert resumed == _draws(parameters, 0, 12)[7:]


def test_draw_zero_is_the_published_setting(training_config):
    parameters = search_space(LUCIC, "study.space", training_config)
    published = published_setting(parameters, training_config)
    assert published == {"optim.lr_g": training_config.optim.lr_g, "optim.lr_d": training_config.optim.lr_d,
                         "optim.n_dis": training_config.optim.n_dis}
    study = optuna.create_study(sampler=make_sampler("random", 0, "sn"))
    first = ask(study, parameters, published)
    study.tell(first, 0.0)
    second = ask(study, parameters, published)  # enqueued once: the next draw is random
    assert first.number == 0 and first.params == published and second.params != published
    assert compose(["experiment=quickstart", *as_overrides(second.params)]).optim.lr_g == second.params["optim.lr_g"]


def _ks_distance(samples: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance of samples on [0, 1] from the uniform distribution."""
    ordered = np.sort(samples)
    n = len(ordered)
    return float(max((np.arange(1, n + 1) / n - ordered).max(), (ordered - np.arange(n) / n).max()))


@pytest.mark.parametrize("sampler", ["random", "qmc"])
def test_the_draws_follow_the_declared_distributions(training_config, sampler):
    """2,000 draws: log-uniform exponents and uniform values are uniform (Kolmogorov-Smirnov distance below the
    alpha = 1e-3 critical value sqrt(ln(2 / alpha) / (2 n)), about 0.043), and each choice is drawn with frequency
    1/2 within 4 binomial standard deviations. The draws are seeded: the outcome is fixed, not flaky."""
    parameters = search_space(LUCIC, "study.space", training_config)
    study = optuna.create_study(sampler=make_sampler(sampler, 0, "sn"))
    draws = []
    for _ in range(2000):
        trial = ask(study, parameters)
        study.tell(trial, 0.0)
        draws.append(trial.params)
    n = len(draws)
    critical = math.sqrt(math.log(2 / 1e-3) / (2 * n))
    exponents = (np.log10([d["optim.lr_g"] for d in draws]) + 5) / 3  # [1e-5, 1e-2] -> [0, 1]
    assert _ks_distance(exponents) < critical
    assert _ks_distance(np.array([d["optim.lr_d"] for d in draws])) < critical
    ones = sum(d["optim.n_dis"] == 1 for d in draws)
    assert abs(ones - n / 2) < 4 * math.sqrt(n / 4)
    assert all(parameters[key].contains(value) for d in draws for key, value in d.items())


@pytest.mark.parametrize("space, sentence", [
    ({"optim.zzlr": {"distribution": "uniform", "low": 0, "high": 1}},
     "study.space.optim.zzlr is not a setting of this study's training runs"),
    ({"optim.lr_g": {"distribution": "uniform", "low": 1e-3, "high": 1e-3}},
     "study.space.optim.lr_g is an empty range (low=0.001, high=0.001); low must be below high."),
    ({"optim.lr_g": {"distribution": "log_uniform", "low": 0, "high": 1e-2}},
     "study.space.optim.lr_g is log-uniform from low=0: a log range needs a positive low bound."),
    ({"optim.n_dis": {"distribution": "choice", "choices": []}},
     "study.space.optim.n_dis.choices=[] must be a non-empty list of values."),
    ({"optim.lr_d": {"distribution": "normal", "low": 0, "high": 1}},
     "study.space.optim.lr_d.distribution='normal' is not one of log_uniform, uniform, int_uniform, choice."),
    ({"optim.n_dis": {"distribution": "int_uniform", "low": 1, "high": 5.5}},
     "study.space.optim.n_dis needs low and high integers; got low=1, high=5.5."),
])
def test_a_bad_space_is_refused_in_one_sentence(training_config, space, sentence):
    with pytest.raises(ConfigError) as refusal:
        search_space(space, "study.space", training_config)
    assert str(refusal.value).startswith(sentence) and "\n" not in str(refusal.value)


def test_an_unknown_sampler_is_refused():
    with pytest.raises(ConfigError, match=r"^study.sampler='grid' is not one of random, qmc, tpe\.$"):
        make_sampler("grid", 0, "sn")


def test_integer_and_choice_parameters_map_to_optunas_distributions():
    assert Parameter("optim.n_dis", "int_uniform", 1, 5).optuna_distribution() == \
        optuna.distributions.IntDistribution(1, 5)
    assert Parameter("optim.lr_g", "log_uniform", 1e-5, 1e-2).optuna_distribution() == \
        optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)
