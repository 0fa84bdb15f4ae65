#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, lints, runs pytest, slow tests
# included (plain `python -m pytest -q` is the fast everyday loop that skips them).
# Usage: bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --disable-pip-version-check -r requirements.txt -r tests/requirements.txt
# Browser tests drive Debian's chromium through playwright (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: could not install chromium; browser tests will be skipped" >&2
  else
    echo "warning: chromium missing and not root; browser tests will be skipped" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ruff check .
# Two workers of one torch thread each, one per core. A 2-thread torch job on a busy 2-core machine
# stalls at every OpenMP barrier: the whole suite took 42 min that way on CI and 74 min beside a
# training job, where one-thread workers keep each core busy. `loadfile` keeps a file's tests (and
# its module fixtures) in one worker.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# -m '' overrides pyproject's default -m 'not slow': CI runs every test. A later -m in "$@"
# (say -m slow) overrides it in turn.
python -m pytest -q -m '' -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@"
