"""A prompt-sensitive fake judge and a fake reflection model for ``judgekit optimize`` tests.

The data: pairs of answers to a question, GOOD in one of them and BAD in the other; the human
label is the GOOD one (A or B). Two pairs share each question (the group).

The judge answers the human's verdict only when its prompt holds :data:`MAGIC` (the instruction
gepa must find) or, with ``demos=True``, when the prompt shows demonstrations (an assistant
message); otherwise it answers A, whatever the pair (kappa 0 against balanced labels). The
reflection model (any request whose model is ``reflector``) proposes the seed's instructions
plus :data:`MAGIC`, in a fenced block as gepa expects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from judgekit.testing.server import ChatRequest, Reply

MAGIC = "Prefer the response that contains the word GOOD."
REFLECTION_PROMPT = "I provided an assistant with the following instructions"
"""How gepa's reflection prompt begins (when the judge itself is the reflection model)."""
REFLECTOR = "reflector"


def write_pairs(path: Path, n_questions: int = 24, seed: int = 0) -> list[dict]:
    """Two pairs per question; GOOD placed A or B at random (balanced overall)."""
    rng = np.random.default_rng(seed)
    rows = []
    for q in range(n_questions):
        for k in range(2):
            good_first = bool(rng.integers(0, 2))
            good, bad = f"GOOD answer {q}-{k}", f"BAD answer {q}-{k}"
            a, b = (good, bad) if good_first else (bad, good)
            rows.append(
                {
                    "id": f"q{q}-{k}",
                    "prompt": f"question number {q}",
                    "response_a": a,
                    "response_b": b,
                    "label": "A" if good_first else "B",
                }
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def data_overrides(path: str = "pairs.jsonl") -> list[str]:
    return [
        "score=preference",
        "prompt=pairwise_v1",
        "dataset=pairwise_jsonl",
        f"dataset.path={path}",
        "dataset.fields.id=id",
    ]


def _verdict(text: str) -> str:
    a = text[text.index("[RESPONSE A]") : text.index("[/RESPONSE A]")]
    return "A" if "GOOD" in a else "B"


def responder(*, demos: bool = False):  # noqa: ANN201
    """The prompt-sensitive judge, and the reflection model on the same server."""

    def respond(request: ChatRequest) -> Reply | str:
        if request.model == REFLECTOR or REFLECTION_PROMPT in request.last_user_text:
            text = request.last_user_text
            seed = text.split("```")[1].strip() if text.count("```") >= 2 else ""
            return f"Here are better instructions:\n```\n{seed} {MAGIC}\n```"
        system = " ".join(
            str(m.get("content", "")) for m in request.messages if m.get("role") == "system"
        )
        shown = any(m.get("role") == "assistant" for m in request.messages)
        if MAGIC in system or (demos and shown):
            return json.dumps({"preference": _verdict(request.last_user_text)})
        return json.dumps({"preference": "A"})

    return respond


def reflection_overrides(url: str) -> list[str]:
    return [
        f"optimize.reflection_model=openai/{REFLECTOR}",
        f"optimize.reflection_api_base={url}",
    ]


def question_of(body: dict) -> str | None:
    """The question a judge request shows last (None for a reflection request)."""
    last = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    if body.get("model") == REFLECTOR or REFLECTION_PROMPT in last:
        return None
    start = last.index("[USER PROMPT]") + len("[USER PROMPT]")
    return last[start : last.index("[/USER PROMPT]")].strip()
