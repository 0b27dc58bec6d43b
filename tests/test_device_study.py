"""`--device jetson`: predicted on this machine, measured on a Ray node offering `jetson`.

The two-node cluster is a local Ray head plus a worker node started with the custom
resource {"jetson": 1}; a study attached to it must run its profiling step on that node.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")
from conftest import jetson_cluster  # noqa: E402

from search.paths import REPO_ROOT  # noqa: E402

SPACE = REPO_ROOT / "spaces" / "esr.yaml"


def run_cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "search.run", str(SPACE), "--device", "jetson",
                           "--budget", "smoke", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def rows(out):
    with open(out / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def two_nodes():
    with jetson_cluster(connect=False) as nodes:
        yield nodes


def test_jetson_study_on_a_cluster_measures_on_the_jetson_node(two_nodes, tmp_path):
    cluster, worker = two_nodes
    out = tmp_path / "measured"
    result = run_cli("--trials", "2", "--sampler", "random", "--address", cluster.address,
                     "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "measured on the Ray node offering resource 'jetson'" in result.stderr
    table = rows(out)
    assert len(table) == 2 and all(r["status"] == "complete" for r in table), [r["error"] for r in table]
    for row in table:
        assert row["latency_source"] == "measured:jetson"
        assert float(row["latency_ms"]) > 0 and row["latency_cv_within_10pct"] == ""
    # the profiling task ran on the worker node, not on the head
    nodes = {r.get("latency_ray_node_id") for r in table}
    assert nodes == {worker.node_id}, nodes


def test_jetson_study_without_a_jetson_predicts_and_says_so(tmp_path):
    out = tmp_path / "predicted"
    result = run_cli("--trials", "2", "--sampler", "random", "--num-cpus", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("is PREDICTED, not measured") == 1
    table = rows(out)
    assert len(table) == 2
    for row in table:
        assert row["status"] == "complete"
        assert row["latency_source"] == "predicted:jetson"
        assert 0 < float(row["latency_cv_within_10pct"]) <= 1
        assert float(row["psnr_Set5"]) > 10 and int(row["flops"]) > 0
