"""The official openai Node SDK (tests/node, ``npm ci`` there) against the gateway: ``parse()``
with a zod response format, whole and streamed, on an Anthropic deployment whose answers
carry text beside the forced tool (issue 10). Runs ``node`` as a subprocess.

Skipped when Node or the installed packages are missing, except under scripts/test (which
sets ``GATEWAY_TEST_NODE=1`` after ``npm ci``), where it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import MASTER_KEY

NODE_DIR = Path(__file__).parent.parent / "node"


def node() -> str:
    binary = shutil.which("node")
    ready = binary is not None and (NODE_DIR / "node_modules" / "openai").is_dir()
    if not ready:
        if os.environ.get("GATEWAY_TEST_NODE") == "1":
            pytest.fail("node or tests/node/node_modules missing: run npm ci in tests/node")
        pytest.skip("node or tests/node/node_modules missing (npm ci --prefix tests/node)")
    assert binary is not None
    return binary


def test_node_sdk_parse_on_anthropic(gateway: str) -> None:
    binary = node()
    done = subprocess.run([binary, str(NODE_DIR / "parse.mjs"), f"{gateway}/v1", MASTER_KEY,
                           "anthropic/chatty-tool"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["content"] == '{"city":"Paris"}'
    assert result["whole"] == result["streamed"] == {"city": "Paris"}
