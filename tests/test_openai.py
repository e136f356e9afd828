"""The OpenAI captioner and embedder against a real local HTTP server speaking the API."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import run_cli


class FakeOpenAI(BaseHTTPRequestHandler):
    calls: list[tuple[str, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.calls.append((self.path, body))
        if self.path.endswith("/embeddings"):
            data = [
                {"object": "embedding", "index": i, "embedding": _vector(text)}
                for i, text in enumerate(body["input"])
            ]
            reply = {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        else:
            name = body["messages"][0]["content"].split("'")[1]
            reply = {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": f"A {name} has a shape.\n- A {name} has a colour.",
                        },
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _vector(text: str) -> list[float]:
    """A deterministic embedding: letter counts, so related words land near each other."""
    counts = np.zeros(26)
    for ch in text.lower():
        if "a" <= ch <= "z":
            counts[ord(ch) - 97] += 1
    return counts.tolist()


@pytest.fixture
def openai_server():
    FakeOpenAI.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_descriptions_and_embeddings_are_cached(world, openai_server):
    root, env = world
    env = {**env, "OPENAI_API_KEY": "sk-test-not-a-secret", "OPENAI_BASE_URL": openai_server}
    args = [
        "recommend",
        str(root / "classes.txt"),
        "--captioner",
        "openai",
        "--embedder",
        "openai:text-embedding-3-large",
        "--json",
    ]
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    chats = [body for path, body in FakeOpenAI.calls if path.endswith("/chat/completions")]
    assert (
        len(chats) == 3
        and chats[0]["model"] == "gpt-4o-mini"
        and "'dog'" in chats[0]["messages"][0]["content"]
    )
    assert any(path.endswith("/embeddings") for path, _ in FakeOpenAI.calls)
    assert "sk-test-not-a-secret" not in first.stdout + first.stderr
    FakeOpenAI.calls.clear()
    second = run_cli(*args, env=env)
    assert second.returncode == 0 and FakeOpenAI.calls == []  # everything came from the registry
    assert json.loads(second.stdout) == json.loads(first.stdout)


def test_openai_captioner_without_key_is_a_user_error(world):
    root, env = world
    result = run_cli(
        "recommend",
        str(root / "classes.txt"),
        "--captioner",
        "openai",
        env={**env, "OPENAI_API_KEY": ""},
    )
    assert result.returncode == 2 and "OPENAI_API_KEY" in result.stderr


def test_a_key_alone_switches_nothing_on(world, openai_server):
    root, env = world
    plain = run_cli("recommend", str(root / "classes.txt"), "--json", env=env)
    keyed = run_cli(
        "recommend",
        str(root / "classes.txt"),
        "--json",
        env={**env, "OPENAI_API_KEY": "sk-test-not-a-secret", "OPENAI_BASE_URL": openai_server},
    )
    assert plain.returncode == 0 and keyed.returncode == 0, keyed.stderr
    assert FakeOpenAI.calls == [] and json.loads(keyed.stdout) == json.loads(plain.stdout)


def test_the_captioner_setting_chooses_openai(world, openai_server):
    root, env = world
    env = {**env, "OPENAI_API_KEY": "sk-test-not-a-secret", "OPENAI_BASE_URL": openai_server}
    assert run_cli("config", "set", "captioner", "openai", env=env).returncode == 0
    result = run_cli(
        "recommend", str(root / "classes.txt"), "--domain", "house pets", "--json", env=env
    )  # not cached
    assert result.returncode == 0, result.stderr
    assert len([path for path, _ in FakeOpenAI.calls if path.endswith("/chat/completions")]) == 3
    FakeOpenAI.calls.clear()
    explicit = run_cli("recommend", str(root / "classes.txt"), "--captioner", "templates", env=env)
    assert explicit.returncode == 0 and FakeOpenAI.calls == []  # a flag beats the setting


def test_openai_embedder_is_offered_but_needs_a_key_when_chosen(world, monkeypatch):
    from mllzoo.text.embedders import embedders

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert {"minilm", "openai:text-embedding-3-large"} <= set(embedders())  # offered without a key
    root, env = world
    env = {**env, "OPENAI_API_KEY": ""}
    result = run_cli(
        "recommend",
        str(root / "classes.txt"),
        "--embedder",
        "openai:text-embedding-3-large",
        env=env,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == "Error: the openai:text-embedding-3-large embedder needs OPENAI_API_KEY"
    )
