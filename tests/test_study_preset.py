"""A study preset read and checked before any draw (sngan_repro.study.preset): each method's runs compose, its
parameters are keys of their config, draw 0 is the method's own setting; every bad value is one sentence."""

import pytest
from omegaconf import OmegaConf

from sngan_repro import compose
from sngan_repro.config import CONFIG_DIR
from sngan_repro.errors import ConfigError
from sngan_repro.study.preset import read_preset

PRESET = {"base": ["experiment=quickstart", "train.steps=300"],
          "methods": {"sn": {"overrides": ["norm=sn"]},
                      "gp": {"overrides": ["norm=gp", "loss=wgan"],
                             "space": {"norm.weight": {"distribution": "log_uniform", "low": 0.1, "high": 100.0}}}},
          "space": {"optim.lr_g": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},
                    "optim.n_dis": {"distribution": "choice", "choices": [1, 5]}},
          "n_draws": 20, "seeds": [1, 2, 3], "metric": "digits_fid/2k_vs_train1797", "direction": "minimize",
          "sampler": "random", "seed": 0}


def _read(**changes):
    return read_preset("test", OmegaConf.create({**PRESET, **changes}), compose)


def test_each_method_gets_the_shared_space_its_own_parameters_and_its_setting_as_draw_zero():
    study = _read()
    sn, gp = study.methods["sn"], study.methods["gp"]
    assert set(sn.parameters) == {"optim.lr_g", "optim.n_dis"}
    assert set(gp.parameters) == {"optim.lr_g", "optim.n_dis", "norm.weight"}
    expected = compose([*PRESET["base"], "norm=gp", "loss=wgan"])
    assert gp.published == {"optim.lr_g": expected.optim.lr_g, "optim.n_dis": expected.optim.n_dis,
                            "norm.weight": expected.norm.weight}
    assert (study.n_draws, study.seeds, study.direction) == (20, (1, 2, 3), "minimize")


@pytest.mark.parametrize("changes, sentence", [
    ({"n_draws": 0}, "study.n_draws=0 must be a positive number of draws per method."),
    ({"seeds": [1, -2]}, "study.seeds=[1, -2] must be a list of non-negative integer seeds."),
    ({"direction": "lowest"}, "study.direction='lowest' is not one of minimize, maximize."),
    ({"sampler": "grid"}, "study.sampler='grid' is not one of random, qmc, tpe."),
    ({"methods": {}}, "study.methods is empty"),
    ({"methods": {"bad": {"overrides": ["norm=zznorm"]}}},
     "study.methods.bad.overrides ['norm=zznorm'] do not compose with the study's base: norm='zznorm' is not an "
     "option of norm"),
    ({"methods": {"sn": {"overrides": ["norm=sn"], "space": {"norm.weight": {"distribution": "uniform", "low": 0,
                                                                               "high": 1}}}}},
     "study.methods.sn.space.norm.weight is not a setting of this study's training runs"),
])
def test_bad_study_input_is_refused_in_one_sentence_before_any_draw(changes, sentence):
    with pytest.raises(ConfigError) as refusal:
        _read(**changes)
    assert str(refusal.value).startswith(sentence) and "\n" not in str(refusal.value), str(refusal.value)


def test_a_misspelled_study_setting_is_refused():
    with pytest.raises(ConfigError, match=r"^study.n_draw is not a setting of a study; it has folder, base, methods, "):
        _read(n_draw=5)


def test_a_metric_the_runs_do_not_log_is_refused_before_any_draw():
    with pytest.raises(ConfigError, match=r"^study.metric='fid/50k_vs_train50k' is not a metric that sn's runs log; "
                                          r"they log digits_is/2k_1split, digits_is/2k_1split_std, "
                                          r"digits_fid/2k_vs_train1797, digits_kid/2k_vs_train1797_10x1k_poly3, "
                                          r"digits_kid/2k_vs_train1797_10x1k_poly3_std, "
                                          r"digits_precision/2k_vs_train1797_k3, digits_recall/2k_vs_train1797_k3\.$"):
        _read(metric="fid/50k_vs_train50k")


@pytest.mark.parametrize("name", sorted(path.stem for path in (CONFIG_DIR / "study").glob("*.yaml")))
def test_every_study_preset_reads_its_methods_compose_and_draw_zero_is_each_methods_setting(name):
    config = compose([f"study={name}"])
    study = read_preset(name, config.study, lambda overrides: compose([f"study={name}", *overrides]))
    assert study.n_draws >= 16 and study.seeds and config.study.folder == f"multirun/studies/{name}"
    for method in study.methods.values():
        runs = compose([f"study={name}", *method.overrides])
        assert method.published == {key: OmegaConf.select(runs, key) for key in method.parameters}
        assert {"optim.lr_g", "optim.optimizer.betas.0", "optim.n_dis"} <= set(method.parameters)
