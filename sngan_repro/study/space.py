"""A study's search space and its draws (Lucic et al. 2018, "Are GANs Created Equal?", Sec. 4: per method, random
draws of the hyper-parameters from wide ranges, the published setting as draw 0).

A space is ``{config key: {distribution, ...}}`` over keys of the training config: ``log_uniform`` and ``uniform``
(``low``, ``high``), ``int_uniform`` (``low``, ``high``, inclusive) and ``choice`` (``choices``). Draws come from
Optuna's samplers through its ask interface; nothing here samples. Each draw of the random sampler is seeded by
(study seed, method, draw number), so a draw is the same on any machine and whether or not the study was
interrupted before it.
"""

import hashlib
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError

DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
SAMPLERS = ("random", "qmc", "tpe")


@dataclass(frozen=True)
class Parameter:
    key: str  # a key of the training config, e.g. optim.lr_g
    distribution: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    @classmethod
    def from_config(cls, key: str, node, where: str) -> "Parameter":
        """The parameter ``key`` of ``node`` (a mapping from the study preset at ``where``), checked."""
        node = OmegaConf.to_container(node) if isinstance(node, DictConfig) else dict(node or {})
        distribution = node.get("distribution")
        if distribution not in DISTRIBUTIONS:
            raise ConfigError(f"{where}.{key}.distribution={distribution!r} is not one of {', '.join(DISTRIBUTIONS)}.")
        if distribution == "choice":
            choices = node.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"{where}.{key}.choices={choices!r} must be a non-empty list of values.")
            return cls(key, distribution, choices=tuple(choices))
        low, high = node.get("low"), node.get("high")
        numbers = int if distribution == "int_uniform" else (int, float)
        if not all(isinstance(bound, numbers) and not isinstance(bound, bool) for bound in (low, high)):
            kind = "integers" if distribution == "int_uniform" else "numbers"
            raise ConfigError(f"{where}.{key} needs low and high {kind}; got low={low!r}, high={high!r}.")
        if not low < high:
            raise ConfigError(f"{where}.{key} is an empty range (low={low}, high={high}); low must be below high.")
        if distribution == "log_uniform" and low <= 0:
            raise ConfigError(f"{where}.{key} is log-uniform from low={low}: a log range needs a positive low bound.")
        return cls(key, distribution, float(low) if distribution != "int_uniform" else low,
                   float(high) if distribution != "int_uniform" else high)

    def optuna_distribution(self) -> optuna.distributions.BaseDistribution:
        if self.distribution == "choice":
            return optuna.distributions.CategoricalDistribution(self.choices)
        if self.distribution == "int_uniform":
            return optuna.distributions.IntDistribution(self.low, self.high)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.distribution == "log_uniform")

    def contains(self, value) -> bool:
        if self.distribution == "choice":
            return value in self.choices
        return isinstance(value, int | float) and not isinstance(value, bool) and self.low <= value <= self.high


def search_space(space: Mapping, where: str, training_config: DictConfig) -> dict[str, Parameter]:
    """The parameters of ``space`` (a study preset's node at ``where``), each a key ``training_config`` has."""
    parameters = {}
    for key, node in (space or {}).items():
        if OmegaConf.select(training_config, key, default=_ABSENT) is _ABSENT:
            raise ConfigError(f"{where}.{key} is not a setting of this study's training runs; give a key of their "
                              f"config (e.g. optim.lr_g, optim.optimizer.betas.0, optim.n_dis).")
        parameters[key] = Parameter.from_config(key, node, where)
    return parameters


_ABSENT = object()


def published_setting(parameters: Mapping[str, Parameter], training_config: DictConfig) -> dict:
    """Draw 0: the values the method's preset itself sets for the parameters (its published setting)."""
    return {key: OmegaConf.select(training_config, key) for key in parameters}


def draw_seed(seed: int, method: str, number: int) -> int:
    """A 32-bit seed (what numpy's RandomState takes) of (study seed, method, draw number), the same on every
    machine and Python."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{method}/{number}".encode()).digest()[:4], "big")


class DrawSeededRandomSampler(optuna.samplers.RandomSampler):
    """Optuna's random sampler, its generator seeded afresh for each draw by (study seed, method, draw number): the
    draw numbers come from the study's storage, so workers sharing a study, or a study resumed after an
    interruption, make exactly the draws one uninterrupted process would."""

    def __init__(self, seed: int, method: str):
        super().__init__(seed)
        self.study_seed, self.method = seed, method

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # RandomSampler draws from the numpy RandomState of its private _rng (tests/test_library_contract.py pins it)
        self._rng.rng.seed(draw_seed(self.study_seed, self.method, trial.number))


def make_sampler(name: str, seed: int, method: str) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for ``method``'s draws: random (the default: a study of distributions must not concentrate
    its draws), scrambled Sobol (qmc: its point is chosen by the draw's number) or TPE."""
    if name == "random":
        return DrawSeededRandomSampler(seed, method)
    if name == "qmc":
        with warnings.catch_warnings():  # "experimental since 3.0": a notice for Optuna's users, not ours
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=draw_seed(seed, method, 0),
                                              warn_independent_sampling=False, warn_asynchronous_seeding=False)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=draw_seed(seed, method, 0))
    raise ConfigError(f"study.sampler={name!r} is not one of {', '.join(SAMPLERS)}.")


def ask(study: optuna.Study, parameters: Mapping[str, Parameter], published: Mapping | None = None
        ) -> optuna.Trial:
    """The study's next draw, from its sampler (``make_sampler``), as an Optuna trial (its ``params`` are the draw,
    its ``number`` the draw's number); ``published``: the method's own setting, which is draw 0 of a study that has
    no draw yet."""
    if published is not None and not study.get_trials(deepcopy=False):
        study.enqueue_trial(dict(published))
    return study.ask({key: parameter.optuna_distribution() for key, parameter in parameters.items()})


def as_overrides(params: Mapping) -> list[str]:
    """A draw as Hydra overrides (``key=value``; floats in full precision)."""
    def text(value) -> str:
        return repr(float(value)) if isinstance(value, float) and math.isfinite(value) else str(value)
    return [f"{key}={text(value)}" for key, value in params.items()]
