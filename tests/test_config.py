"""Every config option and experiment composes into a typed Config; bad values fail at compose."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgekit.config.compose import compose_config, conf_dir, to_config
from judgekit.config.schema import Config, ScoreSpec
from judgekit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["judge", "prompt", "score", "dataset", "runner", "tracking"]
REQUIRED = {
    "judge=openai_compatible": ["judge.model=openai/x", "judge.api_base=http://127.0.0.1:1/v1"],
    "dataset=jsonl": ["dataset.path=x.jsonl"],
    "dataset=pairwise_jsonl": ["dataset.path=x.jsonl"],
    "dataset=mlflow": ["dataset.experiment=labels"],
    # a pairwise prompt and a preference score need each other (checked when composed)
    "prompt=pairwise_v1": ["score=preference"],
    "prompt=pairwise_v2": ["score=preference"],
    "score=preference": ["prompt=pairwise_v1"],
}


def _options() -> list[tuple[str, str]]:
    return [(g, p.stem) for g in GROUPS for p in sorted((conf_dir() / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), _options())
def test_every_group_option_composes(group: str, option: str) -> None:
    choice = f"{group}={option}"
    cfg = to_config(compose_config([choice, *REQUIRED.get(choice, [])]))
    assert isinstance(cfg, Config)


def _experiments() -> list[str]:
    return sorted(p.stem for p in (ROOT / "experiments").glob("*.yaml"))


@pytest.mark.parametrize("name", _experiments())
def test_every_experiment_composes(name: str) -> None:
    cfg = compose_config([f"+experiment={name}"], return_hydra_config=True)
    assert to_config(compose_config([f"+experiment={name}"]))
    header = (ROOT / "experiments" / f"{name}.yaml").read_text().splitlines()[0]
    assert header.startswith("# @package _global_")
    assert "judgekit" in (ROOT / "experiments" / f"{name}.yaml").read_text().split("defaults")[0]
    assert cfg.hydra is not None


@pytest.mark.parametrize("name", _experiments())
def test_experiment_selects_the_same_config_with_or_without_plus(name: str) -> None:
    from omegaconf import OmegaConf

    plain = compose_config([f"experiment={name}"], return_hydra_config=True)
    plus = compose_config([f"+experiment={name}"], return_hydra_config=True)
    assert plain.hydra.runtime.choices.experiment == name
    for key in ("judge", "prompt", "score", "dataset", "tracking"):
        assert OmegaConf.to_container(plain[key]) == OmegaConf.to_container(plus[key])
    assert plain.hydra.mode == plus.hydra.mode


def test_experiment_group_is_the_experiments_folder() -> None:
    assert (conf_dir() / "experiment").resolve() == (ROOT / "experiments").resolve()


def test_helpsteer2_scores_are_0_to_4_with_five_levels() -> None:
    cfg = to_config(compose_config(["score=helpsteer2"]))
    assert cfg.score.names == ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]
    for spec in cfg.score.scores:
        assert (spec.minimum, spec.maximum) == (0, 4)
        assert sorted(spec.levels) == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("judge.foo=1", "Key 'foo' not in 'JudgeConfig'"),
        ("judge.temperature=hot", "could not be converted to Float"),
        ("judge=nope", "Could not find 'judge/nope'"),
        ("runner.parallelism=0", "runner.parallelism: 0 is not valid"),
        ("judge.api_key_env=sk-abc123", "judge.api_key_env"),
        ("judge.structured_output=maybe", "judge.structured_output"),
    ],
)
def test_bad_values_fail_at_compose_time(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        to_config(compose_config([override]))
    assert needle in str(info.value)


def test_score_range_minimum_above_maximum_is_refused() -> None:
    with pytest.raises(ConfigError, match="minimum 5.0 is greater than maximum 1.0"):
        ScoreSpec(name="x", minimum=5.0, maximum=1.0)


def test_rubric_labels_set_the_range() -> None:
    cfg = to_config(
        compose_config(
            [
                "score.scores=[{name: verdict, labels: {good: {value: 1}, bad: {value: 0}}}]",
            ]
        )
    )
    spec = cfg.score.scores[0]
    assert (spec.minimum, spec.maximum) == (0.0, 1.0)
    assert spec.labels["good"].value == 1.0


# --- checks across groups: they fail when the config is composed ---------------------------------


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["score=preference"], "does not show item.response_a and item.response_b"),
        (["prompt=pairwise_v1"], "compares two responses, but score 'helpfulness'"),
        (["judge.swap=true"], "judge.swap: true needs a preference score"),
        (
            ["prompt=pairwise_v1", "score=preference", "judge.swap=true", "runner.rejudge=failed",
             "runner.rejudge_from=runs/x"],
            "runner.rejudge: not available with judge.swap=true yet",
        ),
        (["runner.rejudge=failed"], "runner.rejudge_from: not set"),
    ],
)  # fmt: skip
def test_cross_group_mistakes_fail_at_compose_time(overrides: list[str], needle: str) -> None:
    node = compose_config(overrides)  # composing alone checks nothing across groups
    with pytest.raises(ConfigError, match=needle):
        to_config(node)


def test_matching_groups_compose() -> None:
    cfg = to_config(compose_config(["prompt=pairwise_v2", "score=preference", "judge.swap=true"]))
    assert cfg.judge.swap and cfg.prompt.name == "pairwise_v2"
    assert to_config(compose_config(["prompt=v2", "score=helpsteer2"])).score.name == "helpsteer2"


def test_a_template_that_does_not_parse_is_left_to_the_render_check() -> None:
    from judgekit.config.schema import Message, PromptConfig

    broken = PromptConfig(name="broken", messages=[Message(content="{{ item.response ")])
    cfg = Config(prompt=broken)  # composes; the render pre-pass names the syntax error later
    assert cfg.prompt.name == "broken"
