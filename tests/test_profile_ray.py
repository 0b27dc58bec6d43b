"""Ray routing: profiling lands on the node offering the device's resource (measured:jetson)."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")
from conftest import jetson_cluster  # noqa: E402

from search.profile import cluster_offers, profile_on_device  # noqa: E402

SIZE = (32, 48)


@pytest.fixture(scope="module")
def two_node_cluster():
    with jetson_cluster(connect=True) as nodes:
        yield nodes


def test_profiling_runs_on_the_jetson_node(two_node_cluster):
    cluster, worker = two_node_cluster
    assert cluster_offers("jetson") and not cluster_offers("rpi")
    result = profile_on_device("eSR-MAX_s2_K3_C1", "agx", output_size=SIZE)
    assert result["latency_source"] == "measured:jetson"
    assert result["latency_ray_node_id"] == worker.node_id
    assert result["latency_cv_within_10pct"] is None and result["latency_ms"] > 0
    assert result["flops"] == 4 * 9 * 16 * 24
    assert result["latency_node"].split(":")[1] != str(os.getpid())  # another process


def test_nested_call_from_a_task_on_the_head(two_node_cluster):
    """As inside a Ray Tune trial: a task on the head routes to the jetson node."""
    cluster, worker = two_node_cluster

    @ray.remote(num_cpus=1, resources={"node:__internal_head__": 0.01})
    def trial():
        here = ray.get_runtime_context().get_node_id()
        return here, profile_on_device({"model_id": "eSR-TM_s2_K3_C1"}, "jetson", output_size=SIZE)

    trial_node, result = ray.get(trial.remote(), timeout=120)
    assert trial_node == cluster.head_node.node_id
    assert result["latency_source"] == "measured:jetson"
    assert result["latency_ray_node_id"] == worker.node_id
