"""The front-end fuzzing of the test suite, for longer: arbitrary Unicode (lone surrogates,
NUL, RTL marks, Unicode digits, strings at each limit and past it) through the HTTP API, the
WebSocket commands, the MCP tools and the Telegram commands of one real gateway node, and
schemathesis over ``/openapi.json``. Run on demand, never in the test command:

    python -m bench.fuzz_frontends                 # 1000 examples per operation, random seed
    python -m bench.fuzz_frontends --examples 200  # fewer
    python -m bench.fuzz_frontends --seed 0        # the CI run's fixed seed (derandomized)

Exit code: pytest's (0 when no input produced a 5xx, ``internal`` or a logged failure).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/gateway/test_fuzz_frontends.py", "tests/test_inputs_fuzz.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="per operation (1000)")
    parser.add_argument("--seed", type=int, help="hypothesis seed (default: random)")
    args = parser.parse_args()
    env = {**os.environ, "STARPOD_FUZZ_EXAMPLES": str(args.examples)}
    if args.seed is None:
        env["STARPOD_FUZZ_RANDOM"] = "1"  # tests/gateway/test_fuzz_frontends.py: not derandomized
    command = [sys.executable, "-m", "pytest", *TESTS, "-q", "-p", "no:cacheprovider"]
    command += ["-o", "timeout=0"]  # a long run: no per-test timeout
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
