"""What a session will cost, stage by stage, before it runs.

Each workflow's run costs what its recent runs cost on average. A workflow without a
history yet (the first session after a few product images, say) is not counted as free:
its template's `estimatedSeconds` is priced at the rate the workflows with a history
actually cost per estimated second (which absorbs the workers' speed and price), or,
with no history at all, at the workers' mean price per hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

QUANTUM = Decimal("0.000001")


def per_run_costs(
    averages: Mapping[str, Decimal | None],
    hints: Mapping[str, float | None],
    price_per_hour: float | None,
) -> dict[str, Decimal | None]:
    """Each workflow's estimated cost of one run (None when nothing says)."""
    known = [n for n, avg in averages.items() if avg is not None and hints.get(n)]
    rate: Decimal | None = None  # dollars per estimated second
    if known:
        spent = sum((averages[n] or Decimal(0) for n in known), Decimal(0))
        seconds = sum((Decimal(str(hints[n])) for n in known), Decimal(0))
        rate = spent / seconds
    elif price_per_hour is not None:
        rate = Decimal(str(price_per_hour)) / 3600
    costs: dict[str, Decimal | None] = {}
    for name, avg in averages.items():
        hint = hints.get(name)
        if avg is not None:
            costs[name] = avg
        elif hint and rate is not None:
            costs[name] = Decimal(str(hint)) * rate
        else:
            costs[name] = None
    return costs


def session_estimate(
    runs: Mapping[str, int], costs: Mapping[str, Decimal | None]
) -> Decimal | None:
    """Runs x per-run cost over every stage; None when no stage has an estimate."""
    if all(costs.get(name) is None for name in runs):
        return None
    total = sum((costs.get(name) or Decimal(0)) * count for name, count in runs.items())
    return Decimal(total).quantize(QUANTUM)
