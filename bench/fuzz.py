"""A longer schemathesis run than CI's (tests/test_fuzz.py): the same live ``gateway serve``
(fake upstreams, a throwaway redis-server) and checks (tests/schemathesis.toml), more
examples per operation. Prints the counts the README quotes: operations, test cases,
failures, seconds.

    python bench/fuzz.py [--max-examples 100] [--seed 1] [--workers 2]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.serve import RedisServer
from tests.fuzz_target import live_gateway, run_schemathesis


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    redis = RedisServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                live_gateway(Path(tmp), redis.url) as target:
            report = Path(tmp) / "junit.xml"
            started = time.monotonic()
            result = run_schemathesis(target.url, report, max_examples=args.max_examples,
                                      seed=args.seed, workers=args.workers)
            seconds = time.monotonic() - started
            root = ET.parse(report).getroot()
            log = target.log.read_text(errors="replace")
    finally:
        redis.stop()
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated", output)
    failures = int(root.get("failures", "0")) + int(root.get("errors", "0"))
    operations = len(root.findall(".//testcase")) - 1  # (less "Stateful tests")
    print(output[output.find("=== SUMMARY"):] if "=== SUMMARY" in output else output[-4000:])
    print(f"operations {operations}, max examples {args.max_examples}, test cases "
          f"{cases[1] if cases else '?'}, failures {failures}, unhandled errors in the log "
          f"{log.count('unhandled error in')}, {seconds:.0f} s")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
