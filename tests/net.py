"""Loopback helpers the tests share: a free port, whether something listens, an HTTP status without raising."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from helpers.services.http import free_port

__all__ = ["free_port", "listening", "status"]


def listening(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def status(url: str) -> int:
    """The HTTP status of a GET; an error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
