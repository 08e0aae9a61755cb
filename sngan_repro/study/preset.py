"""A study preset (``conf/study/*.yaml``), read and checked before any draw runs.

A preset names the training runs every draw starts from (``base``: overrides, e.g. ``experiment=quickstart``), the
methods compared (each its overrides, e.g. ``norm=gp loss=wgan``, and the parameters only it has), the search space
shared by all methods, the number of draws per method, the seeds with which each method's best draws are run
again, the metric and its direction, Optuna's sampler and the study's seed (Lucic et al. 2018, Sec. 4; Kurach et al.
2019, Sec. 3). Every bad value is refused in one sentence naming it.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from ..errors import ConfigError, SnganReproError
from ..metrics.base import instantiate_measures
from .space import SAMPLERS, Parameter, as_overrides, published_setting, search_space

DIRECTIONS = ("minimize", "maximize")
KEYS = ("folder", "base", "methods", "space", "n_draws", "seeds", "metric", "direction", "sampler", "seed")


@dataclass(frozen=True)
class Method:
    name: str
    overrides: tuple[str, ...]  # after the study's base overrides
    parameters: dict[str, Parameter]  # the shared space and the method's own
    published: dict  # draw 0: the values the method's runs have without a draw


@dataclass(frozen=True)
class StudyPreset:
    name: str
    base: tuple[str, ...]
    methods: dict[str, Method]
    n_draws: int  # per method, draw 0 included
    seeds: tuple[int, ...]  # the re-runs of each method's best draws
    metric: str
    direction: str
    sampler: str
    seed: int
    arguments: tuple[str, ...] = ()  # the study command's own overrides, between the base and each method's

    def job_overrides(self, method: str, params: dict) -> list[str]:
        """The overrides of one training run of ``method`` with the drawn ``params``."""
        return [*self.base, *self.arguments, *self.methods[method].overrides, *as_overrides(params)]

    def definition(self, method: str) -> dict:
        """What makes ``method``'s draws what they are (not n_draws or seeds, which a resumed study may raise)."""
        entry = self.methods[method]
        arguments = [text for text in self.arguments if not text.lstrip("+~").startswith(("study", "hydra"))]
        return {"base": list(self.base), "arguments": arguments, "overrides": list(entry.overrides),
                "space": {key: [p.distribution, p.low, p.high, list(p.choices)] for key, p in entry.parameters.items()},
                "sampler": self.sampler, "seed": self.seed, "metric": self.metric, "direction": self.direction}


def _integer(value, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def read_preset(name: str, node: DictConfig, compose: Callable[[list[str]], DictConfig],
                arguments: Sequence[str] = ()) -> StudyPreset:
    """The study preset ``node`` (``study=<name>``), each method's runs composed with ``compose(overrides)`` (which
    raises a SnganReproError for overrides that do not compose) to check its parameters against their config;
    ``arguments``: the study command's overrides, which every run gets after the base's."""
    study = OmegaConf.to_container(node, resolve=True)
    unknown = sorted(set(study) - set(KEYS))
    if unknown:
        raise ConfigError(f"study.{unknown[0]} is not a setting of a study; it has {', '.join(KEYS)}.")
    base = tuple(study.get("base") or ())
    if not _integer(study.get("n_draws"), 1):
        raise ConfigError(f"study.n_draws={study.get('n_draws')!r} must be a positive number of draws per method.")
    seeds = study.get("seeds") or []
    if not isinstance(seeds, list) or not all(_integer(seed, 0) for seed in seeds):
        raise ConfigError(f"study.seeds={seeds!r} must be a list of non-negative integer seeds.")
    if study.get("direction") not in DIRECTIONS:
        raise ConfigError(f"study.direction={study.get('direction')!r} is not one of {', '.join(DIRECTIONS)}.")
    if not isinstance(study.get("metric"), str) or not study["metric"]:
        raise ConfigError("study.metric must name the logged metric the study compares (e.g. digits_fid/...).")
    if study.get("sampler") not in SAMPLERS:
        raise ConfigError(f"study.sampler={study.get('sampler')!r} is not one of {', '.join(SAMPLERS)}.")
    if not _integer(study.get("seed"), 0):
        raise ConfigError(f"study.seed={study.get('seed')!r} must be a non-negative integer.")
    if not study.get("methods"):
        raise ConfigError("study.methods is empty; name at least one method, e.g. {sn: {overrides: [norm=sn]}}.")
    methods = {}
    for method, entry in study["methods"].items():
        entry = entry or {}
        overrides = tuple(entry.get("overrides") or ())
        try:
            training = compose([*base, *arguments, *overrides])
        except SnganReproError as error:
            raise ConfigError(f"study.methods.{method}.overrides {list(overrides)} do not compose with the study's "
                              f"base: {str(error).rstrip('.')}.") from None
        parameters = {**search_space(study.get("space"), "study.space", training),
                      **search_space(entry.get("space"), f"study.methods.{method}.space", training)}
        logged = [name for metric in instantiate_measures(training.get("metrics", {}).get("measures")).values()
                  for name in metric.names()]
        if study["metric"] not in logged:
            raise ConfigError(f"study.metric={study['metric']!r} is not a metric that {method}'s runs log; they log "
                              f"{', '.join(logged) or 'none (metrics=none)'}.")
        published = published_setting(parameters, training)
        outside = [key for key, parameter in parameters.items() if not parameter.contains(published[key])]
        if outside:
            raise ConfigError(f"study.methods.{method}: its own setting {outside[0]}={published[outside[0]]!r} (draw "
                              f"0) is outside the study's space for it; widen the range or change the method's "
                              f"overrides.")
        methods[method] = Method(method, overrides, parameters, published)
    return StudyPreset(name, base, methods, study["n_draws"], tuple(seeds), study["metric"], study["direction"],
                       study["sampler"], study["seed"], tuple(arguments))
