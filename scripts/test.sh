#!/usr/bin/env bash
# The test command: set up (idempotently), then ruff, mypy (strict on the packages) and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
# The device side runs on Python 3.10 (JetPack 6) and this machine has only 3.11: a static minimum-version check.
.venv/bin/vermin -q --no-tips --violations -t=3.10- --eval-annotations --no-parse-comments agent runtimes fleet builder edgectl
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 means no test ran: that is a failure, not a pass.
if [ "$rc" -eq 5 ]; then echo "test.sh: pytest ran no test" >&2; exit 1; fi
exit "$rc"
