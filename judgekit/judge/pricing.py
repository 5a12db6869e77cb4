"""What judge calls cost at litellm's list price (``judgekit compare``, a panel's cost table)."""

from __future__ import annotations

import math

__all__ = ["list_price_usd"]


def list_price_usd(model: str, prompt_tokens: float, completion_tokens: float) -> float:
    """USD at litellm's list price; NaN when litellm does not know the model or no tokens."""
    if not model or math.isnan(prompt_tokens):
        return math.nan
    try:
        import litellm  # ~3 s to import: only when a run reported tokens

        costs = litellm.cost_per_token(
            model=model,
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(0 if math.isnan(completion_tokens) else completion_tokens),
        )
    except Exception:  # noqa: BLE001 - an unknown model (e.g. a local alias): no price
        return math.nan
    return float(sum(costs))
