"""The npm socket.io-client, as the mobile app uses it: refused with a reason for a bad
token; presence subscribe, presence and typing updates, and an error for an unknown event.

Runs `npm ci` in tests/realtime/node when node_modules is missing; skips (loudly) only when
node or npm is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.realtime.harness import ROOT

NODE_DIR = ROOT / "tests" / "realtime" / "node"


@pytest.fixture(scope="module")
def node_client() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("SKIPPED LOUDLY: node and npm are needed for the socket.io-client test")
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return node


def test_the_npm_socket_io_client_speaks_to_the_gateway(node_client, gateway, token, users, match):
    alice, bob = users(2)
    conversation = match(alice, bob)
    completed = subprocess.run(
        [node_client, "mobile_client.mjs", gateway.url, token(alice), token(bob), conversation],
        cwd=NODE_DIR,
        env={**os.environ, "ALICE_ID": alice},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "invalid_token" in result["refused"]["message"]
    assert result["refused"]["data"]["code"] == "invalid_token"
    assert result["subscribeAck"] == {"ok": True, "count": 1}
    assert result["bulk"]["users"][0]["user_id"] == alice
    assert result["presence"]["status"] == "online"
    assert result["typingAck"] == {"ok": True}
    assert result["typing"] == {"conversation_id": conversation, "user_id": alice}
    assert result["unknown"]["code"] == "unknown_event"
