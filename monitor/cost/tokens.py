"""Tokens an LLM processed, and its cost per 1M tokens.

An LLM's cost is read per token, not per request: one request may carry ten tokens or
ten thousand. The counters are the server's own (vLLM's `vllm:prompt_tokens_total` and
`vllm:generation_tokens_total`, monitor.cost.presets) or a model's `tokens:` selectors.

Cost per 1M tokens is the model's (or version's) cost over the window divided by its
prompt plus generation tokens, times 1e6: total tokens, input and output alike, as
OpenCost and the hosted-LLM price lists count a request's tokens. It needs both
counters: a figure from one of them alone would read several times too expensive.

Pure: query text builders and arithmetic, no Prometheus, no clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Mapping

from monitor.cost.queries import range_duration

if TYPE_CHECKING:
    from monitor.cost.allocation import CostReport

TOKENS_PER_MILLION = 1_000_000.0


def token_increase(selector: str, version_label: str | None, window: timedelta) -> str:
    """Tokens counted over the window, by version where the counter carries the version label
    (summed over every other label: vLLM's data-parallel `engine`, replicas, pods)."""
    return f"sum by ({version_label or ''}) (increase({selector}[{range_duration(window)}]))"


def total_tokens(prompt: float | None, generation: float | None) -> float | None:
    """Prompt plus generation tokens; None (no data) unless both counters have data."""
    if prompt is None or generation is None:
        return None
    return prompt + generation


def cost_per_1m_tokens(cost_usd: float | None, tokens: float | None) -> float | None:
    """USD per 1,000,000 tokens (prompt + generation); None when nothing was processed or priced."""
    if cost_usd is None or not tokens or tokens <= 0:
        return None
    return cost_usd / tokens * TOKENS_PER_MILLION


def cost_per_1m_tokens_change(current: CostReport, previous: CostReport
                              ) -> dict[tuple[str, str | None], float | None]:
    """Relative change of cost per 1M tokens, (current - previous) / previous, per (model, version).

    None where either period has no figure or the previous one is 0.
    """
    before: Mapping[tuple[str, str | None], float | None] = {
        (m.model, m.version): m.cost_per_1m_tokens for m in previous.models}
    out: dict[tuple[str, str | None], float | None] = {}
    for m in current.models:
        was = before.get((m.model, m.version))
        now = m.cost_per_1m_tokens
        out[(m.model, m.version)] = None if now is None or was is None or was == 0 else (now - was) / was
    return out
