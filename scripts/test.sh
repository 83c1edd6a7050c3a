#!/usr/bin/env bash
# The test command: set up (idempotently), then ruff, mypy (strict on the packages) and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest's exit 5 means no test ran: that is a failure, not a pass.
if [ "$rc" -eq 5 ]; then echo "test.sh: pytest ran no test" >&2; exit 1; fi
exit "$rc"
