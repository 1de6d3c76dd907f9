"""Regenerate ``tests/models/tiny-onnx/``: the tiny GGUF (``make_tiny_gguf.py``, with a
1024-token context to keep the rotary tables small) turned into an onnxruntime-genai model
by ``gateway convert-onnx``. Needs torch and transformers (the model builder's), which the
tests themselves do not, hence the committed folder.

    python tests/models/make_tiny_onnx.py [OUT_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from providers.local.convert import convert  # noqa: E402
from tests.models.make_tiny_gguf import make_tiny_gguf  # noqa: E402

TINY_ONNX = Path(__file__).resolve().parent / "tiny-onnx"
CONTEXT_LENGTH = 1024


def make_tiny_onnx(out: Path = TINY_ONNX) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        gguf = make_tiny_gguf(Path(tmp) / "tiny.gguf", context_length=CONTEXT_LENGTH)
        convert(gguf, out)
    return out


if __name__ == "__main__":
    print(make_tiny_onnx(Path(sys.argv[1]) if len(sys.argv) > 1 else TINY_ONNX))
