"""The one retry-delay rule (domain/backoff.py) the bus, ComfyUI streams and webhooks share."""

from comfygraph.domain.backoff import backoff


def test_backoff_doubles_caps_and_jitters() -> None:
    for attempt, ceiling in ((0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0), (10_000, 30.0)):
        delays = {backoff(attempt, 1.0, 30.0) for _ in range(50)}
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays), (attempt, delays)
        assert len(delays) > 1  # jittered
    assert backoff(3, 1.0, 30.0, jitter=(1.0, 1.0)) == 4.0
