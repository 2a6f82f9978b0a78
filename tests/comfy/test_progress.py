from __future__ import annotations

from comfygraph.studio.progress import CEILING, ProgressModel

GRAPH = {str(i): {"class_type": "X", "inputs": {}} for i in range(1, 5)}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cached_nodes_count_as_done_and_progress_is_monotonic() -> None:
    clock = Clock()
    model = ProgressModel(GRAPH, clock=clock)
    model.cached(["1"])
    assert model.percent == 25.0
    model.executing("2")
    seen = [model.percent]
    for step in range(1, 11):
        model.node_progress("2", step, 10)
        seen.append(model.percent)
    model.node_progress("2", 3, 10)  # a late, smaller tick must not pull it back
    seen.append(model.percent)
    clock.now = 4.0
    model.executing("3")
    model.executing("4")
    model.executing(None)
    seen.append(model.percent)
    assert seen == sorted(seen)
    assert seen[-1] == CEILING  # 100 is reserved for COMPLETED
    assert model.durations["2"] == 4.0


def test_weights_from_history_shape_the_percentages() -> None:
    model = ProgressModel(GRAPH, {"1": 1, "2": 7, "3": 1, "4": 1})
    model.executed("1")
    assert model.percent == 10.0
    model.executing("2")
    model.node_progress("2", 5, 10)
    assert model.percent == 45.0


def test_progress_state_messages() -> None:
    model = ProgressModel(GRAPH)
    model.node_states({"1": {"state": "finished", "value": 1, "max": 1},
                       "2": {"state": "running", "value": 2, "max": 4}})  # fmt: skip
    assert model.percent == 37.5


def test_eta() -> None:
    clock = Clock()
    model = ProgressModel(GRAPH, clock=clock)
    assert model.eta_seconds() is None
    model.executed("1")
    model.executed("2")
    clock.now = 10.0
    assert model.eta_seconds() == 10.0
    assert model.eta_seconds(expected_total=40.0) == 20.0
