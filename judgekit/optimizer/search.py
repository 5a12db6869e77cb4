"""The two searches of ``judgekit optimize``, and the record of every candidate they judged.

``gepa`` evolves the instructions (the first system message) with the ``gepa`` package through
:class:`JudgeAdapter`: a candidate is judged on a train minibatch and, when gepa accepts it, on
the whole dev split, by :class:`~judgekit.optimizer.evaluate.Evaluator`. Every row of a batch
gets the *batch's* objective as its score, so gepa's minibatch test (sum of scores) and its dev
figure (mean of scores) are the objective on the whole batch: ordinal agreement is what is
optimised, not an average of per-item closeness. Its reflection dataset holds the rows where the
judge and the human disagree, with the human label and the judge's answer.

``fewshot`` draws k-shot sets (k ≤ ``optimize.max_demos``) from the train split, seeded and
spread over the human labels, and judges each on dev.

Both stop when the next step does not fit in ``optimize.budget_calls``
(:class:`~judgekit.optimizer.evaluate.BudgetExhausted`), and keep what they found on Ctrl-C.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from judgekit.config.schema import Config, PromptConfig
from judgekit.data.loading import Example
from judgekit.errors import TemplateError
from judgekit.optimizer.candidates import (
    INSTRUCTIONS,
    Candidate,
    answer_for,
    build_prompt,
    demo_messages,
    free_name,
    write_candidate,
)
from judgekit.optimizer.evaluate import BudgetExhausted, Evaluation, Evaluator

__all__ = ["JudgeAdapter", "Search", "fewshot_search", "gepa_search"]

log = logging.getLogger("judgekit")
MAX_SHOWN_CHARS = 1000
"""How much of a row's prompt and of the judge's answer the reflection model sees."""
MAX_REFLECTION_ROWS = 4
MAX_STALLED = 5


@dataclass
class Search:
    """Every candidate judged so far, by name, and how the best dev objective grew with calls."""

    cfg: Config
    evaluator: Evaluator
    seed: Candidate
    directory: Path
    """Where candidate prompt files are written (``DIR/prompt/<seed>_opt<k>.yaml``)."""
    train: list[Example]
    dev: list[Example]
    candidates: list[Candidate] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)
    """(calls spent, best dev objective so far), one point per dev evaluation."""
    stopped: str = "finished"
    """Why the search ended: ``finished``, ``budget``, ``stalled`` (gepa made no progress),
    ``interrupted`` or ``error``."""
    note: str = ""
    """What gepa reported last when a step failed (e.g. the reflection model's error)."""

    def __post_init__(self) -> None:
        self.candidates.append(self.seed)

    def candidate(
        self, prompt_for: Callable[[str], PromptConfig], key: str, parent: str | None, method: str
    ) -> Candidate:
        """The candidate ``key`` (its instructions, its demo ids) describes; new ones named."""
        for known in self.candidates:
            if _key(known) == key:
                return known
        taken = {c.name for c in self.candidates}
        draft = prompt_for(self.seed.name)
        name = free_name(self.directory, self.seed.name, draft, taken)
        prompt = prompt_for(name)
        made = Candidate(name, prompt, parent=parent, method=method, calls=self.spent)
        made.instructions, made.demos = _parts(key)
        # the name is taken on disk at once (another optimisation in the same directory picks
        # the next one); the header is written when the search ends
        made.path = write_candidate(made, self.directory, [f"{name}: being judged"])
        self.candidates.append(made)
        return made

    @property
    def spent(self) -> int:
        return self.evaluator.budget.spent

    def judge(self, candidate: Candidate, rows: list[Example], split: str) -> Evaluation:
        """Judge ``candidate`` on ``rows`` of ``split``; record the objective when the rows are
        the whole dev split (or a train batch)."""
        what = f"judging {candidate.name} on {len(rows)} {split} rows"
        before = self.spent
        try:
            evaluation = self.evaluator.evaluate(candidate.prompt, rows, what)
        except TemplateError:
            if candidate.method != "gepa":
                raise
            # proposed instructions that use a variable the data lacks: shown as plain text
            candidate.prompt = build_prompt(
                self.seed.prompt, candidate.name, instructions=candidate.instructions, literal=True
            )
            evaluation = self.evaluator.evaluate(candidate.prompt, rows, what)
        candidate.cost += self.spent - before
        if split == "dev" and len(rows) == len(self.dev):
            candidate.dev = evaluation.value
            best = max(self.evaluator.signed(c.dev) for c in self.candidates if c.dev is not None)
            self.curve.append((self.spent, self.evaluator.signed(best)))
        elif split == "train":
            candidate.train = evaluation.value
        return evaluation

    def best(self) -> Candidate:
        """The candidate with the best dev objective; the seed unless another beats it."""
        scored = [c for c in self.candidates if c.dev is not None and not math.isnan(c.dev)]
        if not scored:
            return self.seed
        return max(scored, key=lambda c: (self.evaluator.signed(c.dev or math.nan), c is self.seed))


def _key(candidate: Candidate) -> str:
    return candidate.instructions + "\x00" + ",".join(candidate.demos)


def _parts(key: str) -> tuple[str, list[str]]:
    instructions, _, demos = key.partition("\x00")
    return instructions, [d for d in demos.split(",") if d]


# --- gepa ------------------------------------------------------------------------------------


class JudgeAdapter:
    """gepa's adapter: a candidate's instructions in, the judge's agreement on a batch out."""

    propose_new_texts = None
    """None: gepa's own instruction proposal (its reflection prompt) is used."""

    def __init__(self, search: Search, demos: list[Example] | None = None) -> None:
        self.search = search
        self.demos = demos or []
        self.dev_ids = {e.id for e in search.dev}
        self.parent = search.seed.name
        """The candidate last judged for reflection: gepa proposes its next child from it."""

    def candidate_for(self, instructions: str) -> Candidate:
        search, seed = self.search, self.search.seed
        demo_ids = [e.id for e in self.demos]
        if instructions == seed.instructions and demo_ids == seed.demos:
            return seed
        pairs = demo_messages(seed.prompt, self.demos, search.cfg.score) if self.demos else None

        def prompt_for(name: str) -> PromptConfig:
            return build_prompt(seed.prompt, name, instructions=instructions, demos=pairs)

        key = instructions + "\x00" + ",".join(demo_ids)
        return search.candidate(prompt_for, key, self.parent, "gepa")

    def evaluate(
        self, batch: list[Example], candidate: dict[str, str], capture_traces: bool = False
    ) -> Any:
        from gepa import EvaluationBatch

        chosen = self.candidate_for(candidate[INSTRUCTIONS])
        split = "dev" if all(e.id in self.dev_ids for e in batch) else "train"
        evaluation = self.search.judge(chosen, batch, split)
        score = self.search.evaluator.signed(evaluation.value)
        traces = None
        if capture_traces:
            traces, self.parent = _traces(batch, evaluation, self.search), chosen.name
        outputs = [evaluation.answers.get(e.id, "") for e in batch]
        return EvaluationBatch(outputs=outputs, scores=[score] * len(batch), trajectories=traces)

    def make_reflective_dataset(
        self, candidate: dict[str, str], eval_batch: Any, components_to_update: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        traces = eval_batch.trajectories or []
        wrong = [t for t in traces if not t["agrees"]]
        shown = (wrong or traces)[:MAX_REFLECTION_ROWS]
        records = [
            {"Inputs": t["inputs"], "Generated Outputs": t["output"], "Feedback": t["feedback"]}
            for t in shown
        ]
        return {name: records for name in components_to_update}


def _traces(batch: list[Example], evaluation: Evaluation, search: Search) -> list[dict[str, Any]]:
    from judgekit.prompts import render

    spec = search.evaluator.spec
    rows = evaluation.rows.set_index("example_id")
    out = []
    for example in batch:
        row = rows.loc[example.id] if example.id in rows.index else None
        human = example.human.get(spec.name, math.nan)
        judged = math.nan if row is None else float(row["judge"])
        shown = render(search.seed.prompt, example, search.cfg.score)[-1]["content"]
        out.append(
            {
                "inputs": shown[:MAX_SHOWN_CHARS],
                "output": evaluation.answers.get(example.id, "")[:MAX_SHOWN_CHARS],
                "agrees": judged == human,
                "feedback": _feedback(spec, human, judged, row),
            }
        )
    return out


def _feedback(spec: Any, human: float, judged: float, row: Any) -> str:
    def name(value: float) -> str:
        labels = {r.value: label for label, r in spec.labels.items()} if spec.labels else {}
        return repr(labels.get(value, f"{value:g}"))

    if math.isnan(judged):
        reason = "" if row is None else str(row.get("failure_reason") or "")
        return (
            f"The judge's answer could not be used ({reason or 'no answer'}); the human "
            f"{spec.name} is {name(human)}. Answer in the required JSON form."
        )
    if judged == human:
        return f"Correct: the judge and the human both gave {spec.name} {name(human)}."
    return (
        f"Wrong: the human gave {spec.name} {name(human)}, the judge gave {name(judged)}. "
        "Say what in the instructions would lead the judge to the human's answer."
    )


def gepa_search(
    search: Search, reflection: Callable[..., str], demos: list[Example] | None = None
) -> None:
    """Evolve the instructions with gepa until the budget is spent (or gepa stops)."""
    try:
        import gepa
    except ImportError:  # a dependency of judgekit: only a broken install lacks it
        from judgekit.errors import ConfigError

        raise ConfigError(
            "optimize.method: gepa needs the gepa package; pip install gepa "
            "(or use optimize.method=fewshot)"
        ) from None
    opt = search.cfg.optimize
    adapter = JudgeAdapter(search, demos)
    try:
        gepa.optimize(
            seed_candidate={INSTRUCTIONS: search.seed.instructions},
            trainset=search.train,
            valset=search.dev,
            adapter=adapter,  # type: ignore[arg-type]  # gepa's Protocol is generic over its types
            reflection_lm=reflection,
            reflection_minibatch_size=min(opt.minibatch_size, len(search.train)),
            stop_callbacks=[_Stopper(search)],
            seed=opt.seed,
            skip_perfect_score=False,
            logger=_GepaLog(search),
        )
    except BudgetExhausted as why:
        log.info("search stopped: %s", why)
        search.stopped = "budget"
    else:
        if search.stopped != "stalled":
            search.stopped = "budget" if search.evaluator.budget.left <= 0 else "finished"


class _Stopper:
    """Stop gepa when the budget is spent, or when :data:`MAX_STALLED` iterations in a row
    neither spent a call nor found a candidate (gepa retries a failed proposal forever)."""

    def __init__(self, search: Search) -> None:
        self.search, self.last, self.stalled = search, (-1, -1), 0

    def __call__(self, gepa_state: Any) -> bool:
        now = (self.search.spent, len(self.search.candidates))
        self.stalled = self.stalled + 1 if now == self.last else 0
        self.last = now
        if self.stalled >= MAX_STALLED:
            log.info("search stopped: %d gepa iterations without a new request", MAX_STALLED)
            self.search.stopped = "stalled"
            return True
        return self.search.evaluator.budget.left <= 0


class _GepaLog:
    """gepa's log lines go to judgekit's logger: at debug level, but a failed step (gepa goes on
    after one, e.g. when the reflection model gave no answer) as a warning, kept as the search's
    note."""

    def __init__(self, search: Search) -> None:
        self.search = search

    def log(self, message: str) -> None:
        first = message.strip().splitlines()[0] if message.strip() else ""
        budget = "optimize.budget_calls" in first  # the search's own stop, reported as such
        if not budget and ("failed" in first.lower() or "Exception" in first):
            log.warning("gepa: %s", first)
            self.search.note = first
        else:
            log.debug("gepa: %s", message)


# --- few-shot --------------------------------------------------------------------------------


def fewshot_search(search: Search, base: Candidate | None = None) -> None:
    """Judge seeded k-shot sets drawn from train on dev until the budget is spent."""
    opt, schema = search.cfg.optimize, search.cfg.score
    base = base or search.seed
    if base.dev is None:
        search.judge(base, search.dev, "dev")
    pool = [e for e in search.train if answer_for(e, schema) is not None]
    if not pool:
        log.info("fewshot: no train row has a complete human label to show; no demonstrations")
        return
    rng = np.random.default_rng(opt.seed)
    by_label: dict[float, list[Example]] = defaultdict(list)
    for example in pool:
        by_label[example.human[search.evaluator.spec.name]].append(example)
    tried: set[tuple[str, ...]] = set()
    misses = 0
    try:
        while misses < 50:
            rows = _draw(rng, by_label, int(rng.integers(1, min(opt.max_demos, len(pool)) + 1)))
            ids = tuple(e.id for e in rows)
            if ids in tried:
                misses += 1
                continue
            tried.add(ids)
            misses = 0
            pairs = demo_messages(base.prompt, rows, schema)

            def prompt_for(name: str, pairs: Any = pairs) -> PromptConfig:
                return build_prompt(base.prompt, name, demos=pairs)

            key = base.instructions + "\x00" + ",".join(ids)
            made = search.candidate(prompt_for, key, base.name, "fewshot")
            search.judge(made, search.dev, "dev")
        search.stopped = "finished"
    except BudgetExhausted as why:
        log.info("search stopped: %s", why)
        search.stopped = "budget"


def _draw(rng: np.random.Generator, by_label: dict[float, list[Example]], k: int) -> list[Example]:
    """k train rows spread over the human labels: labels in a seeded order, one row each, again."""
    labels = [by_label[v] for v in sorted(by_label)]
    order = rng.permutation(len(labels))
    shuffled = [list(rng.permutation(len(rows))) for rows in labels]
    out: list[Example] = []
    while len(out) < k and any(shuffled):
        for i in order:
            if shuffled[i] and len(out) < k:
                out.append(labels[i][shuffled[i].pop()])
    return [out[i] for i in rng.permutation(len(out))]
