"""The tools' benchmarks in one go (issue 11's ``bench/tools.py``): speech to text through the
gateway against bare faster-whisper (``tools_stt.py``), then detection through the gateway
against bare onnxruntime and OCR pages per second (``tools_vision.py``). Each prints its own
ratios, measured in one run. Run it on a quiet machine:

    flock -x /tmp/cpu.lock python bench/tools.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = 0
    for script in ("tools_stt.py", "tools_vision.py"):
        print(f"== {script}", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script)])
    return failed


if __name__ == "__main__":
    sys.exit(main())
