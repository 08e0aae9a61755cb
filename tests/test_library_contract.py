"""The private or undocumented names of Lightning, PyTorch and torch-fidelity the code relies on.

Each check says which file uses the name and how; it binds the arguments that file passes to the
name's signature, so an upgrade that renames, removes or re-signs one fails here, by name, instead
of somewhere inside a training run. pyproject caps pytorch-lightning below the next minor release
for the same reason: raise the cap together with these checks.
"""

import inspect
import re
import sys

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from torch import nn
from torch.nn.utils import parametrize

TRAINER, CANDIDATES = object(), {}  # placeholders: only the calls' shapes are checked


def _callable_as(owner, name: str, used_in: str, *args, **kwargs):
    """``owner.name`` exists and accepts the call ``used_in`` makes: ``owner.name(*args, **kwargs)``."""
    where = f"{used_in} relies on {getattr(owner, '__name__', type(owner).__name__)}.{name}"
    assert hasattr(owner, name), f"{where}, which this version no longer has"
    function = getattr(owner, name)
    try:
        inspect.signature(function).bind(*args, **kwargs)
    except TypeError as error:
        pytest.fail(f"{where}{inspect.signature(function)}, which no longer takes the call it makes ({error})")
    return function


# -- Lightning: callbacks/checkpoint.py ------------------------------------------------------------------

@pytest.mark.parametrize("name,args", [
    ("_should_skip_saving_checkpoint", (TRAINER,)),  # skips saving in sanity checks, fast_dev_run, twice a step
    ("_monitor_candidates", (TRAINER,)),  # overridden there (super() call) to add g_step to the candidates
    ("_save_topk_checkpoint", (TRAINER, CANDIDATES)),
    ("_save_last_checkpoint", (TRAINER, CANDIDATES)),
])
def test_model_checkpoint_private_hooks(name, args):
    # unbound: the subclass calls them as self.<name>(...), so bind with a stand-in self
    _callable_as(ModelCheckpoint, name, "callbacks/checkpoint.py (GeneratorStepCheckpoint, BestCheckpoint)", object(),
                 *args)


# -- Lightning: callbacks/progress.py --------------------------------------------------------------------

def test_progress_bar_private_hooks():
    from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm

    used_in = "callbacks/progress.py (GeneratorStepProgressBar)"
    should_update = _callable_as(TQDMProgressBar, "_should_update", used_in, object(), 0, 0)  # (current, total)
    bar = TQDMProgressBar(refresh_rate=5, process_position=1)
    assert should_update(bar, 10, 100) and not should_update(bar, 11, 100), \
        f"{used_in} relies on TQDMProgressBar._should_update(current, total) being 'current is a refresh step'"
    train_bar = inspect.getattr_static(TQDMProgressBar, "train_progress_bar", None)
    assert isinstance(train_bar, property) and train_bar.fset is not None, \
        f"{used_in} relies on the settable TQDMProgressBar.train_progress_bar property (it makes its own bar)"
    made = Tqdm(desc="G steps", total=3, initial=1, position=0, disable=True, leave=True, dynamic_ncols=True,
                file=sys.stdout, smoothing=0, bar_format=TQDMProgressBar.BAR_FORMAT)
    assert (made.total, made.n) == (3, 1), \
        f"{used_in} builds its bar as Lightning does: tqdm_progress.Tqdm(...) with TQDMProgressBar.BAR_FORMAT"
    assert bar.process_position == 1 and bar.is_disabled is False, \
        f"{used_in} relies on TQDMProgressBar.process_position and .is_disabled"


# -- Lightning: module.py ----------------------------------------------------------------------------------

def test_lightning_module_trainer_reference():
    # module.py (world_size, _backward) reads self._trainer: the public .trainer raises when no trainer is attached
    module = pl.LightningModule()
    assert hasattr(module, "_trainer") and module._trainer is None, \
        "module.py (GAN.world_size) relies on LightningModule._trainer being None before fit"
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    module.trainer = trainer
    assert module._trainer is trainer, "module.py (GAN.world_size) relies on LightningModule._trainer"


# -- PyTorch ------------------------------------------------------------------------------------------------

def test_transposed_convolutions_share_a_private_base():
    base = getattr(nn.modules.conv, "_ConvTransposeNd", None)
    assert base is not None, "nn/weight_norm.py (output_dim) relies on torch.nn.modules.conv._ConvTransposeNd"
    assert all(issubclass(cls, base) for cls in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    assert not any(issubclass(cls, base) for cls in (nn.Conv1d, nn.Conv2d, nn.Linear)), \
        "nn/weight_norm.py (output_dim) takes _ConvTransposeNd for 'output units along dim 1'"


def test_parametrization_module_names():
    # nn/normalizing.py maps "<layer>.parametrizations.<tensor>.<index>" back to "<layer>" with a regex
    class Identity(nn.Module):
        def forward(self, weight):
            return weight

    net = nn.Sequential(nn.Linear(2, 2))
    parametrize.register_parametrization(net[0], "weight", Identity())
    names = [name for name, module in net.named_modules() if isinstance(module, Identity)]
    assert names == ["0.parametrizations.weight.0"], \
        f"nn/normalizing.py (_PARAMETRIZATION_SUFFIX) parses parametrization names; torch now gives {names}"
    from sngan_repro.nn.normalizing import _layer_name

    assert _layer_name(names[0]) == "0"


def test_tensorboard_summary_writer_internals(tmp_path):
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    used_in = "callbacks/hparams.py (HParamsSummary)"
    _callable_as(torch.utils.tensorboard.summary, "hparams", used_in, {"a": 1}, {"m": 0.0})
    summaries = hparams({"a": 1}, {"m": 0.0})
    assert len(summaries) == 3, f"{used_in} unpacks torch's hparams() into (experiment, start, end)"
    writer = SummaryWriter(str(tmp_path))
    try:
        _callable_as(writer.file_writer, "add_summary", f"{used_in}, through SummaryWriter.file_writer,",
                     summaries[0])
    finally:
        writer.close()


# -- torch-fidelity (module-level functions, not its documented calculate_metrics) ---------------------------

def test_torch_fidelity_functions():
    from torch_fidelity import (
        feature_extractor_inceptionv3,
        feature_extractor_vgg16,
        metric_fid,
        metric_isc,
        metric_kid,
        metric_prc,
    )

    _callable_as(metric_isc, "isc_features_to_metric", "metrics/scores.py (inception_score)",
                 torch.zeros(2, 3), splits=1, shuffle=True, rng_seed=2020)
    _callable_as(metric_fid, "fid_features_to_statistics", "metrics/scores.py (feature_statistics)", torch.zeros(2, 3))
    _callable_as(metric_fid, "fid_statistics_to_metric", "metrics/scores.py (frechet_distance)", {}, {}, verbose=False)
    _callable_as(metric_kid, "kid_features_to_metric", "metrics/scores.py (kernel_distance)", torch.zeros(2, 3),
                 torch.zeros(2, 3), kid_subsets=1, kid_subset_size=2, kid_kernel="poly", kid_kernel_poly_degree=3,
                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1.0, rng_seed=2020, verbose=False)
    _callable_as(metric_prc, "prc_features_to_metric", "metrics/scores.py (precision_recall)", torch.zeros(2, 3),
                 torch.zeros(2, 3), prc_neighborhood=3, prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    _callable_as(feature_extractor_vgg16.FeatureExtractorVGG16, "__init__", "metrics/vgg.py (VGG16Features)", object(),
                 "vgg16", ["fc2_relu"], feature_extractor_weights_path=None)
    # tests/test_kid_prc.py makes the offline download fail by patching this
    assert hasattr(feature_extractor_vgg16, "torchvision_load_pretrained_vgg16")
    extractor = feature_extractor_inceptionv3.FeatureExtractorInceptionV3
    _callable_as(extractor, "__init__", "metrics/inception.py (InceptionFeatures)", object(), "inception-v3-compat",
                 ["2048", "logits_unbiased"], feature_extractor_weights_path=None)
    # tests/helpers/inception.py builds the network without its published weights by patching these
    assert hasattr(feature_extractor_inceptionv3, "load_state_dict_from_url"), \
        "tests/helpers/inception.py patches torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url"
    source = inspect.getsource(extractor.__init__)
    assert re.search(r"\bload_state_dict_from_url\(", source) and re.search(r"\.load_state_dict\(", source), \
        "tests/helpers/inception.py expects FeatureExtractorInceptionV3.__init__ to download and load its weights"


# -- Lightning: distributed.py, train.py, callbacks/preemption.py ----------------------------------------

def test_ddp_strategy_private_hooks():
    """GANStrategy overrides DDPStrategy._setup_model (called by configure_ddp with the module, its return value
    becoming strategy.model) and _register_ddp_hooks, and reads _layer_sync, _ddp_kwargs and the comm-hook fields."""
    from pytorch_lightning.overrides.distributed import _register_ddp_comm_hook
    from pytorch_lightning.strategies import DDPStrategy

    _callable_as(DDPStrategy, "_setup_model", "distributed.py", TRAINER, TRAINER)
    _callable_as(DDPStrategy, "_register_ddp_hooks", "distributed.py", TRAINER)
    assert "self.model = self._setup_model(self.model)" in inspect.getsource(DDPStrategy.configure_ddp)
    strategy = DDPStrategy(bucket_cap_mb=5)
    assert strategy._ddp_kwargs == {"bucket_cap_mb": 5} and strategy._layer_sync is None
    assert (strategy._ddp_comm_hook, strategy._ddp_comm_state, strategy._ddp_comm_wrapper) == (None, None, None)
    inspect.signature(_register_ddp_comm_hook).bind(model=None, ddp_comm_state=None, ddp_comm_hook=None,
                                                    ddp_comm_wrapper=None)


def test_subprocess_script_launcher_is_the_command_line_rerun(tmp_path):
    """train.check_process_launch recognises the launcher that runs the command line again for the other local
    ranks: the one a 2-device CPU trainer with our strategy gets."""
    from pytorch_lightning.strategies.launchers import _SubprocessScriptLauncher

    from sngan_repro.distributed import GANStrategy

    trainer = pl.Trainer(strategy=GANStrategy(), accelerator="cpu", devices=2, logger=False,
                         default_root_dir=str(tmp_path))
    assert isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)


def test_signal_handlers_are_installed_before_training_starts():
    """Preemption replaces the handlers in on_train_start, after Lightning's _SignalConnector has installed its own
    (in Trainer._run, before the fit loop calls on_train_start), so that it can hand over to them later."""
    source = inspect.getsource(pl.Trainer._run)
    assert source.index("register_signal_handlers()") < source.index("self._run_stage()")


# -- Optuna: study/space.py ------------------------------------------------------------------------------

def test_optunas_random_sampler_draws_from_the_random_state_of_its_private_rng():
    """study/space.py's DrawSeededRandomSampler reseeds RandomSampler._rng.rng (a numpy RandomState) before each
    trial: the seeded state must be the one sample_independent draws from."""
    import numpy as np
    import optuna

    sampler = optuna.samplers.RandomSampler(seed=0)
    assert isinstance(sampler._rng.rng, np.random.RandomState)
    study = optuna.create_study(sampler=sampler)
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    values = []
    for _ in range(2):
        sampler._rng.rng.seed(7)
        values.append(study.ask({"x": distribution}).params["x"])
    assert values[0] == values[1] == np.random.RandomState(7).uniform(0.0, 1.0)
