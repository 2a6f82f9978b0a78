"""A session's estimate counts every stage, also those without a history yet."""

from __future__ import annotations

from decimal import Decimal

from comfygraph.comfy.templates import load_templates
from comfygraph.studio.sessions.estimate import per_run_costs, session_estimate

HINTS = {"product-image": 20.0, "image-to-clip": 90.0, "compose-ad": 240.0}
RUNS = {"product-image": 6, "image-to-clip": 6, "compose-ad": 1}


def test_stages_without_history_are_priced_at_the_rate_of_those_with_one() -> None:
    # The case: a few product images ran, then the first session (no clip or
    # compose history). Images alone gave 3.6x too little; every stage counts now.
    averages = {"product-image": Decimal("0.000118"), "image-to-clip": None, "compose-ad": None}
    costs = per_run_costs(averages, HINTS, price_per_hour=0.5)
    rate = Decimal("0.000118") / 20
    assert costs == {"product-image": Decimal("0.000118"), "image-to-clip": 90 * rate,
                     "compose-ad": 240 * rate}  # fmt: skip
    total = session_estimate(RUNS, costs)
    assert total == (6 * Decimal("0.000118") + 6 * 90 * rate + 240 * rate).quantize(Decimal("1e-6"))
    assert total is not None and total > Decimal("0.00071") * 3  # was images only


def test_history_wins_and_nothing_known_is_null() -> None:
    averages = {name: Decimal("0.01") for name in HINTS}
    assert per_run_costs(averages, HINTS, None) == averages
    nothing = dict.fromkeys(HINTS)
    assert session_estimate(RUNS, per_run_costs(nothing, HINTS, None)) is None
    priced = per_run_costs(nothing, HINTS, price_per_hour=36.0)  # $0.01 per second
    assert session_estimate(RUNS, priced) == Decimal("9.000000")


def test_the_session_workflows_carry_estimated_seconds() -> None:
    templates = load_templates(None)
    for name, seconds in HINTS.items():
        template = templates.get(name)
        assert template is not None and template.estimated_seconds == seconds
