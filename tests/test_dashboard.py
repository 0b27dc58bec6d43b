"""optuna-dashboard (installed by the README's install command) serves a study search.run wrote.

Starts the dashboard on a free localhost port and reads the study back over its HTTP API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from search.paths import REPO_ROOT

# A study search.run wrote (the DVC stage study_imdn_ratio): copied, so the dashboard cannot
# change the committed file.
STUDY = REPO_ROOT / "studies" / "imdn_ratio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - localhost only
        return json.loads(response.read().decode())


@pytest.mark.timeout(120)
def test_dashboard_serves_a_study_written_by_the_suite(tmp_path):
    executable = shutil.which("optuna-dashboard") or str(Path(sys.executable).parent / "optuna-dashboard")
    assert Path(executable).exists(), "optuna-dashboard is not installed (README install command)"
    shutil.copy(STUDY / "optuna.db", tmp_path / "optuna.db")
    rows = (STUDY / "trials.csv").read_text().splitlines()[1:]
    port = free_port()
    server = subprocess.Popen([executable, f"sqlite:///{tmp_path / 'optuna.db'}", "--port", str(port), "--host",
                               "127.0.0.1", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while time.monotonic() < deadline and studies is None:
            if server.poll() is not None:
                pytest.fail(f"optuna-dashboard exited: {server.stderr.read().decode()[-1000:]}")
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")
            except OSError:
                time.sleep(0.5)
        assert studies is not None, "the dashboard did not answer within 60 s"
        summaries = studies["study_summaries"]
        name = json.loads((STUDY / "study.json").read_text())["study_name"]
        assert [s["study_name"] for s in summaries] == [name]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{summaries[0]['study_id']}?after=0")
        trials = detail["trials"]
        assert len(trials) == len(rows)  # every trials.csv row is a trial of the storage
        config_ids = {a["value"] for t in trials for a in t["user_attrs"] if a["key"] == "config_id"}
        assert config_ids == {row.split(",")[1] for row in rows}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
