"""The Hub probe on real local sockets: a listening port answers, a closed one does not, both at once."""

from __future__ import annotations

import os
import socket
import time

import huggingface_hub.constants
import pytest

from mllzoo.models import weights as hub


@pytest.fixture(autouse=True)
def online_env(monkeypatch):
    """No proxy or offline setting from the developer's shell decides these tests."""
    for name in [name for name in os.environ if name.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_closed_endpoint_is_unreachable_at_once(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}/")
    started = time.perf_counter()
    assert not hub.hub_reachable()
    assert time.perf_counter() - started < hub.PROBE_TIMEOUT_S
    assert hub.hub_unreachable_reason() == f"{hub.hub_endpoint()} cannot be reached"
    assert not hub.hub_endpoint().endswith("/")


def test_listening_endpoint_is_reachable(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.hub_reachable() and hub.hub_unreachable_reason() is None


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_mode_wins_without_probing(monkeypatch, variable):
    monkeypatch.setenv(variable, "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://name.invalid")
    assert hub.hub_unreachable_reason() == "offline mode is on (HF_HUB_OFFLINE)"


def test_block_runs_offline_only_while_the_hub_is_unreachable(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with hub.offline_unless_reachable() as reachable:
        assert not reachable and huggingface_hub.constants.is_offline_mode()
    assert not huggingface_hub.constants.HF_HUB_OFFLINE
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        with hub.offline_unless_reachable() as reachable:
            assert reachable and not huggingface_hub.constants.is_offline_mode()
