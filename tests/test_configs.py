"""Every option of every config group composes, and the objects it names instantiate (nothing heavy loads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

import run  # (registers the `job_folder` resolver the hydra run dir uses)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


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
def test_strategies_instantiate(compose_cfg, name):
    cfg = compose_cfg(f"strategy={name}")
    strategy = instantiate(cfg.strategy)
    assert strategy.name == cfg.strategy.name


def test_subset_size_and_degree_have_one_knob_each(compose_cfg):
    cfg = compose_cfg()
    assert "n" not in cfg.data and "level" not in cfg.data and "_target_" not in cfg.data
    assert cfg.diversity.n > 0 and 0 <= cfg.diversity.level <= 1


def test_the_run_name_is_built_once(compose_cfg):
    """`run_name` is the only place strategy, n, level and seed are joined into a name (folder, W&B, artifact)."""
    cfg = compose_cfg("strategy=micro_response", "diversity.level=0.5", "seed=3", "logger=wandb", hydra_cfg=True)
    assert cfg.run_name == "micro_response_n200_l0.5_s3"
    assert cfg.logger.name == cfg.run_name and cfg.hydra.run.dir.endswith("_" + cfg.run_name)
    code = [p for d in ("core", "diversity", "training", "evaluation", "benchmarks") for p in (ROOT / d).rglob("*.py")]
    sources = [p.read_text() for p in (*CONF.rglob("*.yaml"), *code, ROOT / "run.py")]
    assert sum(text.count("_n${diversity.n}_l${diversity.level}") for text in sources) == 1
    assert sum(text.count("${length_tag:") for text in sources) == 1  # the length control joins once too
    assert not any("-n{" in text and "-l{" in text for text in sources)  # no name assembled in code


def test_a_locked_run_never_shares_its_name_or_folder_with_the_unlocked_one(compose_cfg):
    locked = ("diversity.length.window=[30,100]", "diversity.length.lock=true")
    cfg = compose_cfg("strategy=micro_response", "diversity.level=0.5", "seed=3", *locked, hydra_cfg=True)
    assert cfg.run_name == "micro_response_w30-100_locked_n200_l0.5_s3"
    assert cfg.hydra.sweep.subdir.startswith("micro_response_w30-100_locked/")
    both = compose_cfg("strategy=micro_response", "diversity.length.lock=true", "diversity.length.instruction_bins=8")
    assert both.run_name.startswith("micro_response_locked_i8_n")  # holding instruction length too: its own name


def test_the_seven_degrees_are_defined_once():
    from diversity.selectors.degree import DEGREES

    assert tuple(i / 6 for i in range(7)) == DEGREES
    code = [p for p in ROOT.rglob("*.py") if ".venv" not in p.parts and p.name != "test_configs.py"]
    definitions = [p for p in code if "/ 6 for i in range(7)" in p.read_text() or "range(7)) / 6" in p.read_text()]
    assert definitions == [ROOT / "diversity/selectors/degree.py"], definitions
    sweeps = {p.name: p.read_text() for p in CONF.rglob("*.yaml")}
    assert not [name for name, text in sweeps.items() if "0.1667" in text or "0.3333" in text]  # ${degrees:...}
    assert "diversity.level: ${degrees:}" in sweeps["paper_grid.yaml"]


def test_degrees_resolver_names_the_degrees_by_position():
    import run

    assert run.degrees() == "0,0.1667,0.3333,0.5,0.6667,0.8333,1" and run.degrees(2, 6) == "0.3333,1"


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


def test_code_defaults_equal_the_yaml_defaults(compose_cfg):
    """A value left out of a config means the same in code as in the YAML a user reads."""
    import inspect

    from core.cache import default_cache_root
    from diversity.metrics.subset import compute_subset_metrics
    from training.module import LORA_DEFAULTS, OPTIMIZER_DEFAULTS

    cfg = compose_cfg()
    assert OmegaConf.to_container(cfg.model.lora) == {"enabled": True, **LORA_DEFAULTS}
    optimizer = OmegaConf.to_container(cfg.model.optimizer)
    assert optimizer.pop("_target_") == "torch.optim.AdamW" and optimizer.pop("_partial_") is True
    assert optimizer == OPTIMIZER_DEFAULTS
    paths = OmegaConf.load(Path(run.__file__).parent / "conf/paths/default.yaml")
    assert Path(paths.cache_dir) == default_cache_root()
    from evaluation.analysis.plan import plan

    plan_yaml = OmegaConf.load(Path(run.__file__).parent / "conf/plan/default.yaml")
    defaults = inspect.signature(plan).parameters
    for key, name in (("score", "score"), ("alpha", "alpha"), ("power", "target_power")):
        assert plan_yaml[key] == defaults[name].default
    default = inspect.signature(compute_subset_metrics).parameters["self_bleu_samples"].default
    assert default == cfg.diversity.metrics.self_bleu_samples
    from core.generate import generate

    generation = inspect.signature(generate).parameters
    for key in ("max_new_tokens", "batch_size"):
        assert generation[key].default == cfg.eval.generation[key], key


@pytest.mark.parametrize("group", ["jsonl", "hf_dataset"])
def test_a_file_or_hub_pool_needs_its_source(compose_cfg, group):
    """`source: ???` merged onto ShareGPT's source kept it: `data=jsonl` alone silently ran on ShareGPT."""
    assert compose_cfg(f"data={group}").data.source is None  # refused by diversity.config_rules


def test_a_length_controlled_sweep_job_has_its_own_folder(compose_cfg):
    """An unlocked and a locked sweep of the same name wrote the same folder, the second over the first."""
    folders = {
        compose_cfg(*extra, hydra_cfg=True).hydra.sweep.subdir
        for extra in ([], ["diversity.length.lock=true"], ["window=short"], ["diversity.length.window=[30,100]"])
    }
    assert len(folders) == 4 and any(folder.startswith("random_locked/") for folder in folders)


@pytest.mark.parametrize("name", [n for n in options("experiment") if n.endswith("_base")])
def test_base_model_experiments_are_one_untrained_job_in_their_studys_sweep(compose_cfg, name):
    """Each `<study>_base` (its study + experiment/base/model.yaml) pins every key its study sweeps to one value,
    trains nothing and writes into the study's sweep folder under `base`."""
    base = compose_cfg(f"experiment={name}", hydra_cfg=True)
    study = compose_cfg(f"experiment={name.removesuffix('_base')}", hydra_cfg=True)
    params = base.hydra.sweeper.params
    assert set(params) >= set(study.hydra.sweeper.params)
    assert all("," not in str(value) and "range(" not in str(value) for value in params.values()), params
    assert params.strategy == "random" and base.trainer.max_steps == 0 and base.budget.tokens is None
    assert base.hydra.sweep.subdir == "base" and base.hydra.sweep.dir == study.hydra.sweep.dir


def test_the_pre_audit_tagger_composes_into_a_meso_strategy(compose_cfg):
    """`phrase_lexical` extends `phrase` (its own defaults list) and still composes as an override of a strategy."""
    cfg = compose_cfg("strategy=meso_response", "tagger@strategy.extractor.tagger=phrase_lexical")
    tagger = instantiate(cfg.strategy).extractor.tagger
    assert (tagger.admit_on, tagger.min_support, tagger.lexical_bonus, tagger.max_tags) == ("score", 1, 0.2, 10)
    default = instantiate(compose_cfg("strategy=meso_response").strategy).extractor.tagger
    assert default.cache_key() == type(default)(progress=False).cache_key()  # the YAML says what the code does
