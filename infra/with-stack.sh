#!/usr/bin/env bash
# Runs a command with the local stack up. If this script had to start the stack, it stops
# it again afterwards, whatever the command's outcome, so no server is left behind.
set -uo pipefail
cd "$(dirname "$0")/.."
LS=(uv run --frozen leadstream)
if "${LS[@]}" infra status >/dev/null 2>&1; then
  exec "$@"
fi
trap '"${LS[@]}" infra down >/dev/null' EXIT
"${LS[@]}" infra up || exit 1
"$@"
