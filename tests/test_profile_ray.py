"""Ray routing: profiling lands on the node offering the device's resource (measured:jetson)."""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

from search.profile import cluster_offers, profile_on_device  # noqa: E402

SIZE = (32, 48)


@pytest.fixture(scope="module")
def two_node_cluster():
    if ray.is_initialized():
        pytest.skip("another Ray session is active in this process")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, resources={"jetson": 1})
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


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
