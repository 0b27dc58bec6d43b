"""search.profile.latency.time_calls: the suite's one timer (warm-up, repeats, interleaving)."""

from __future__ import annotations

import pytest

from search.errors import UserError
from search.profile.latency import time_call, time_calls


def _recorder(calls: list, name: str):
    def fn():
        calls.append(name)
        return len(calls)
    return fn


def test_sequential_order_warmup_and_result():
    calls: list[str] = []
    timings = time_calls({"a": _recorder(calls, "a"), "b": _recorder(calls, "b")}, repeats=2, warmup=1)
    assert calls == ["a", "b", "a", "a", "b", "b"]  # warm-up of each, then each one's repeats
    assert [len(t.wall_s) for t in timings.values()] == [2, 2]
    assert [len(t.cpu_s) for t in timings.values()] == [2, 2]
    assert timings["a"].result == 4 and timings["b"].result == 6  # what the last timed call returned
    assert all(v >= 0 for t in timings.values() for v in t.wall_s + t.cpu_s)


def test_interleaved_rounds_rotate_the_first_callable():
    calls: list[str] = []
    time_calls({k: _recorder(calls, k) for k in "abc"}, repeats=4, interleave=True)
    assert "".join(calls) == "abc" + "bca" + "cab" + "abc"


def test_synchronize_runs_around_each_timed_call():
    events: list[str] = []
    time_call(lambda: events.append("call"), repeats=2, warmup=1, synchronize=lambda: events.append("sync"))
    assert events == ["call", "sync", "sync", "call", "sync", "sync", "call", "sync"]


def test_one_call_by_default_and_repeats_checked():
    timing = time_call(lambda: "done")
    assert timing.result == "done" and len(timing.wall_s) == 1
    with pytest.raises(UserError, match="repeats"):
        time_call(lambda: None, repeats=0)
