#!/usr/bin/env bash
# Install babelmoe with its dev tools and run the lint and the whole test suite (unit + integration).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -c constraints.txt -e ".[dev]"
# Headless Chromium renders the HTML report in a test (Debian package; needs root or sudo).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed; its test will be skipped"
fi
.venv/bin/ruff check babelmoe tests benchmarks scripts
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest exits 5 when no test was collected (e.g. a -k filter that matches nothing): not a failure here.
if [ "$status" = 5 ]; then exit 0; fi
exit "$status"
