"""A run's prompt version and judge in MLflow's registries: the Prompts and Judges views.

Each prompt version is registered as ``judgekit.<prompt name>`` (a chat template: the messages'
roles and Jinja text), a new registry version only when the text changed; the run is tagged
with the URI it used (``judgekit.prompt_uri``: ``prompts:/judgekit.v2/3``) and linked to it.
:func:`register_prompt_version` is the one way to do it, for runs and for candidates written by
other features (optimisation). The judge (model + prompt + score schema) is registered as an
MLflow judge of the experiment (``judgekit-<judge>-<prompt>-<score>``), a new version only when
its instructions or model changed.

MLflow's registries are written through the run's :class:`~judgekit.tracking.runs.MlflowRun`
guard, after everything else is logged: a store that fails here does not lose the run's
results, and is reported like any other logging failure.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from judgekit.config.schema import Config, PromptConfig, ScoreSchemaConfig, ScoreSpec

if TYPE_CHECKING:
    from judgekit.tracking.runs import MlflowRun

__all__ = [
    "PROMPT_PREFIX",
    "PROMPT_URI_TAG",
    "RegisteredPrompt",
    "judge_instructions",
    "judge_name",
    "link_prompt_to_experiment",
    "prompt_registry_name",
    "prompt_template",
    "register_judge",
    "register_prompt_version",
    "register_run_prompt",
]

log = logging.getLogger("judgekit")

PROMPT_PREFIX = "judgekit."
PROMPT_URI_TAG = "judgekit.prompt_uri"
"""The run tag holding the registry URI of the prompt version the run used."""
JUDGE_TAG = "judgekit.mlflow_judge"
"""The run tag holding the name of the run's judge in the experiment's Judges view."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class RegisteredPrompt:
    """A prompt version in MLflow's registry."""

    name: str
    version: int
    created: bool
    """False when an existing version with the same text was reused."""

    @property
    def uri(self) -> str:
        """``prompts:/<name>/<version>``, what ``mlflow.genai.load_prompt`` takes."""
        return f"prompts:/{self.name}/{self.version}"


def prompt_registry_name(prompt_name: str) -> str:
    """``judgekit.<prompt name>``, with characters MLflow refuses in a name replaced by ``-``."""
    return PROMPT_PREFIX + (_UNSAFE.sub("-", prompt_name).strip("-") or "prompt")


def prompt_template(prompt: PromptConfig) -> list[dict[str, str]]:
    """The prompt as MLflow's chat template: ``[{role, content}]`` with the Jinja text as is."""
    return [{"role": str(m.role), "content": m.content} for m in prompt.messages]


def register_prompt_version(
    client: Any,
    prompt: PromptConfig,
    *,
    tracking_uri: str,
    commit_message: str | None = None,
    tags: dict[str, str] | None = None,
) -> RegisteredPrompt:
    """Register ``prompt`` as ``judgekit.<name>`` unless a version with the same messages exists.

    Existing versions are looked up and their templates compared (roles and text); only a
    changed text makes a new version. On a SQLite store the lookup and the registration hold
    the store's lock, so the jobs of a parallel sweep do not register one text twice.
    """
    from judgekit.tracking.runs import store_lock

    name, template = prompt_registry_name(prompt.name), prompt_template(prompt)
    with store_lock(tracking_uri):
        for version in _prompt_versions(client, name):
            if version.template == template:
                return RegisteredPrompt(name, int(version.version), created=False)
        created = client.register_prompt(
            name=name,
            template=template,
            commit_message=commit_message or prompt.description or None,
            tags={"judgekit.prompt": prompt.name, **(tags or {})},
        )
    return RegisteredPrompt(name, int(created.version), created=True)


def _prompt_versions(client: Any, name: str) -> list[Any]:
    """Every version of the prompt ``name``; none when it is not registered yet."""
    from mlflow.exceptions import MlflowException

    versions: list[Any] = []
    token = None
    while True:
        try:
            page = client.search_prompt_versions(name, max_results=100, page_token=token)
        except MlflowException as err:
            if "not found" in str(err).lower() or err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return versions
            raise
        versions.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return versions


def link_prompt_to_experiment(client: Any, name: str, experiment_id: str) -> None:
    """List the prompt under the experiment (its Prompts tab), as MLflow does for a prompt
    registered or loaded with an active experiment, but at once rather than in a thread."""
    from mlflow.prompt.constants import PROMPT_EXPERIMENT_IDS_TAG_KEY

    tags = client.get_prompt(name).tags or {}
    ids = [i for i in tags.get(PROMPT_EXPERIMENT_IDS_TAG_KEY, "").split(",") if i.strip()]
    if experiment_id not in ids:
        client.set_prompt_tag(
            name, PROMPT_EXPERIMENT_IDS_TAG_KEY, f",{','.join([*ids, experiment_id])},"
        )


def register_run_prompt(mlrun: MlflowRun, cfg: Config) -> None:
    """Register the run's prompt version, tag the run with its URI and link it to the run."""

    def register() -> None:
        registered = register_prompt_version(
            mlrun.client, cfg.prompt, tracking_uri=cfg.tracking.uri
        )
        mlrun.client.set_tag(mlrun.run_id, PROMPT_URI_TAG, registered.uri)
        mlrun.client.link_prompt_version_to_run(mlrun.run_id, registered.uri)
        link_prompt_to_experiment(mlrun.client, registered.name, mlrun.experiment_id)
        log.info(
            "prompt %s: %s (%s)",
            cfg.prompt.name,
            registered.uri,
            "new version" if registered.created else "unchanged",
        )

    mlrun._guard("prompt registry", register)


def judge_name(cfg: Config) -> str:
    """``judgekit-<judge>-<prompt>-<score>``, the judge's name in the Judges view."""
    return _UNSAFE.sub("-", f"judgekit-{cfg.judge.name}-{cfg.prompt.name}-{cfg.score.name}")


def judge_instructions(cfg: Config) -> str:
    """The judge's instructions for MLflow: the prompt as the judge sees it, with each item field
    shown as ``[inputs.<field>]`` and the item itself as ``{{ inputs }}`` (MLflow's judges take no
    other template variable), then the score schema."""
    lines = [
        f"judgekit judge {cfg.judge.name!r} ({cfg.judge.model}), prompt {cfg.prompt.name!r}, "
        f"score schema {cfg.score.name!r}. The item to judge is {{{{ inputs }}}}; "
        "[inputs.FIELD] below is its FIELD.",
        "",
    ]
    for message in _rendered(cfg.prompt, cfg.score):
        lines += [f"[{message['role']}]", message["content"], ""]
    lines.append("Scores:")
    lines += [f"- {_describe(spec)}" for spec in cfg.score.scores]
    return "\n".join(lines).strip() + "\n"


def _rendered(prompt: PromptConfig, schema: ScoreSchemaConfig) -> list[dict[str, str]]:
    """The prompt rendered with placeholders for the item fields; a template that cannot render
    them is shown as written, its ``{{``/``}}`` spaced out (MLflow would read them as variables)."""
    from judgekit.errors import TemplateError
    from judgekit.prompts.render import item_fields, render
    from judgekit.records import Example

    item = {name: f"[inputs.{name}]" for name in item_fields(prompt)}
    try:
        return render(prompt, Example(id="0", item=item), schema)
    except TemplateError:
        return [
            {"role": m["role"], "content": m["content"].replace("{{", "{ {").replace("}}", "} }")}
            for m in prompt_template(prompt)
        ]


def _describe(spec: ScoreSpec) -> str:
    if spec.labels:
        shape = "one of " + ", ".join(spec.labels)
    else:
        shape = f"{spec.minimum:g} to {spec.maximum:g}"
    return f"{spec.name} ({shape})" + (f": {spec.description}" if spec.description else "")


def _value_type(schema: ScoreSchemaConfig) -> Any:
    """MLflow's ``feedback_value_type``: int, float or the labels for one score, a mapping for
    several."""
    if len(schema.scores) > 1:
        return dict[str, str] if any(s.labels for s in schema.scores) else dict[str, float]
    spec = schema.scores[0]
    if spec.labels:
        return Literal[tuple(spec.labels)]  # type: ignore[valid-type]
    return int if spec.is_integer_scale else float


def mlflow_model(model: str) -> str:
    """A litellm model string (``openai/gpt-4o``) as MLflow's judge model URI (``openai:/gpt-4o``)."""
    provider, _, name = model.partition("/")
    return f"{provider}:/{name}" if name else model


def register_judge(mlrun: MlflowRun, cfg: Config) -> None:
    """Register the run's judge in its experiment (MLflow's Judges view) and tag the run with its
    name; the same definition registered before is not registered again.

    MLflow does not store a judge's ``base_url``: the endpoint is named in the description,
    with any credentials masked (:func:`judgekit.secrets.redact_url`); header secrets and the
    key are never passed."""
    from judgekit.secrets import redact_url

    try:
        from mlflow.genai.judges import make_judge

        endpoint = redact_url(cfg.judge.api_base or "")
        about = f"judgekit: {cfg.prompt.description or cfg.prompt.name}"
        judge = make_judge(
            name=judge_name(cfg),
            instructions=judge_instructions(cfg),
            model=mlflow_model(cfg.judge.model),
            description=(about + (f" (endpoint {endpoint})" if endpoint else ""))[:500],
            feedback_value_type=_value_type(cfg.score),
            inference_params={"temperature": cfg.judge.temperature},
            base_url=cfg.judge.api_base if cfg.judge.api_base == endpoint else None,
        )
    except Exception as err:  # noqa: BLE001  # MLflow refused the judge: not a store failure
        log.warning("judge not registered in MLflow (%s: %s)", type(err).__name__, err)
        return

    def register() -> None:
        from judgekit.tracking.runs import store_lock

        with store_lock(cfg.tracking.uri):
            if not _same_judge_registered(judge, mlrun.experiment_id):
                judge.register(experiment_id=mlrun.experiment_id)
        mlrun.client.set_tag(mlrun.run_id, JUDGE_TAG, judge.name)

    mlrun._guard("judge registry", register)


def _same_judge_registered(judge: Any, experiment_id: str) -> bool:
    """Whether the latest registered version of ``judge.name`` has the same definition."""
    from mlflow.exceptions import MlflowException
    from mlflow.genai.scorers import get_scorer

    try:
        latest = get_scorer(name=judge.name, experiment_id=experiment_id)
    except MlflowException as err:
        if "not found" in str(err).lower():
            return False
        raise
    keys = ("instructions_judge_pydantic_data", "description", "aggregations")
    old, new = latest.model_dump(), judge.model_dump()
    return all(old.get(k) == new.get(k) for k in keys)
