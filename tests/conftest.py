"""Shared fixtures. CI has ../shared beside the repo (released weights, published data)."""

from __future__ import annotations

import contextlib

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from search.paths import REPO_ROOT, SHARED_ROOT, SHIPPED_DATA

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# As the suite's commands do before Ray is imported (search.profile.cluster), so that every
# Ray instance of the test session, and each command run in-process, uses one auth mode.
os.environ.setdefault("RAY_AUTH_MODE", "token")
torch.set_num_threads(min(2, os.cpu_count() or 1))

WEIGHTS = SHARED_ROOT / "weights"
needs_shared_weights = pytest.mark.skipif(
    not WEIGHTS.is_dir(), reason="../shared/weights not present"
)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def set5_dir() -> Path:
    return SHIPPED_DATA / "Set5"


@pytest.fixture(scope="session")
def set14_dir() -> Path:
    return SHIPPED_DATA / "Set14"


@pytest.fixture()
def one_thread():
    """Small tensors: a second intra-op thread only adds contention on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def tiny_image_dir(tmp_path) -> Path:
    """A folder of three small random RGB PNGs (and one gray) for quick tests."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path / "Tiny"
    folder.mkdir()
    for i in range(3):
        arr = rng.integers(0, 256, size=(24 + 4 * i, 28, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i}.png")
    Image.fromarray(rng.integers(0, 256, size=(24, 24), dtype=np.uint8)).save(folder / "gray.png")
    return folder


@contextlib.contextmanager
def jetson_cluster(connect: bool):
    """A local two-node Ray cluster: a head and a worker offering the resource {"jetson": 1}.

    ``connect``: also ``ray.init`` this process to it. Yields (cluster, worker_node).
    """
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("another Ray session is active in this process")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1, resources={"jetson": 1})
    try:
        if connect:
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        if connect:
            ray.shutdown()
        cluster.shutdown()
