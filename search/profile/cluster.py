"""Joining a Ray cluster: what ``search.run --address`` and ``search.profile --ray-address``
share, so that a driver either joins quickly or says in one line why it cannot."""

from __future__ import annotations

import os
import socket
import sys

from search.errors import UserError

# Seconds to wait for a Ray cluster's address to answer before saying it is unreachable
# (ray.init itself retries an unreachable address for minutes without a word).
CLUSTER_CONNECT_TIMEOUT_S = 10.0


def prepare_ray_environment() -> None:
    """Environment every driver of the suite sets before Ray is imported (Ray reads it once;
    users may override it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray 2.60: a cluster started with `ray start` accepts a driver only with token
    # authentication (InvalidAuthToken otherwise); a local instance works either way. Ray
    # reads the mode when it is imported and hands it to the processes it starts: set after
    # the import, the local instance's GCS would want a token its own driver does not send.
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def check_cluster_reachable(address: str | None, timeout_s: float = CLUSTER_CONNECT_TIMEOUT_S) -> None:
    """Refuse an address (or $RAY_ADDRESS when ``address`` is None) where nothing answers."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if not address or address in ("auto", "local"):
        return
    where = address.split("://", 1)[-1].rstrip("/")
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"--address {address}: no Ray cluster answers there ({reason}); start one with "
                        "`ray start --head` or leave --address out for a local Ray instance") from None
