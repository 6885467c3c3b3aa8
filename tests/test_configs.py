"""Every option of every config group composes, and the objects it names instantiate (nothing heavy loads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.fixture()
def compose_cfg(tmp_path):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):

        def _compose(*overrides: str, hydra_cfg: bool = False):
            base = [f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"]
            return compose("config", overrides=[*base, *overrides], return_hydra_config=hydra_cfg)

        yield _compose
    GlobalHydra.instance().clear()


def test_every_group_has_options():
    for group in ("data", "strategy", "model", "trainer", "logger", "eval", "experiment", "debug"):
        assert options(group), group


@pytest.mark.parametrize("name", options("strategy"))
def test_strategies_instantiate_with_their_data_module(compose_cfg, name):
    cfg = compose_cfg(f"strategy={name}")
    strategy = instantiate(cfg.strategy)
    assert strategy.name == cfg.strategy.name
    datamodule = instantiate(cfg.data, strategy=strategy)
    assert datamodule.n == cfg.diversity.n and datamodule.strategy is strategy


@pytest.mark.parametrize("tagger", options("tagger"))
def test_meso_taggers_compose(compose_cfg, tagger):
    overrides = ["strategy=meso_response", f"tagger@strategy.extractor.tagger={tagger}"]
    if tagger == "jsonl":
        overrides.append("strategy.extractor.tagger.path=tags.jsonl")
    strategy = instantiate(compose_cfg(*overrides).strategy)
    assert type(strategy.extractor.tagger).__name__.lower().startswith(tagger[:3])


@pytest.mark.parametrize("name", options("model"))
def test_models_build_without_loading_weights(compose_cfg, name):
    module = instantiate(compose_cfg(f"model={name}").model)
    assert module.model is None  # weights load in configure_model, not at construction


@pytest.mark.parametrize("name", options("data"))
def test_data_options_compose(compose_cfg, name):
    overrides = [f"data={name}"] + ([] if name == "sharegpt" else ["data.source=/some/pool.jsonl"])
    cfg = compose_cfg(*overrides)
    assert OmegaConf.select(cfg, "data.source")


@pytest.mark.parametrize("name", options("trainer"))
def test_trainers_compose(compose_cfg, name):
    cfg = compose_cfg(f"trainer={name}")
    if cfg.trainer.accelerator == "cpu":
        trainer = instantiate(cfg.trainer, logger=False)
        assert trainer.max_steps == cfg.trainer.max_steps
    else:
        assert cfg.trainer.precision == "bf16-mixed"


@pytest.mark.parametrize("name", options("logger"))
def test_loggers_instantiate(compose_cfg, name):
    from training.tracking import build_logger

    logger = build_logger(compose_cfg(f"logger={name}").get("logger"))
    assert (logger is None) == (name == "none")


@pytest.mark.parametrize("name", options("eval"))
def test_eval_options_build_their_scorers(compose_cfg, name):
    from evaluation.runner import build_scorers

    cfg = compose_cfg(f"eval={name}")
    scorers = build_scorers(OmegaConf.to_container(cfg.eval, resolve=False)) if cfg.eval.get("enabled", True) else []
    assert name == "none" or scorers


@pytest.mark.parametrize("name", options("experiment") + ["debug:" + d for d in options("debug")])
def test_experiments_and_debug_compose(compose_cfg, name):
    override = f"debug={name[6:]}" if name.startswith("debug:") else f"experiment={name}"
    cfg = compose_cfg(override, hydra_cfg=True)
    instantiate(cfg.strategy)
    if name in ("paper_grid", "paper_random", "smoke_grid"):
        assert "strategy" in cfg.hydra.sweeper.params


@pytest.mark.parametrize("launcher", ["basic", "joblib", "parallel", "submitit_local", "submitit_slurm", "slurm"])
def test_launchers_compose(compose_cfg, launcher):
    cfg = compose_cfg(f"hydra/launcher={launcher}", hydra_cfg=True)
    assert cfg.hydra.launcher._target_
