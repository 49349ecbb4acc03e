#!/usr/bin/env bash
# The benchmark peers' own environment: Quix Streams pins confluent-kafka < 2.13, so it never
# goes into the product's environment. Idempotent; prints the interpreter's path.
set -euo pipefail
VENV="${LEADSTREAM_PEERS_VENV:-$HOME/.cache/leadstream/peers/quix}"
if [ ! -x "$VENV/bin/python" ]; then
    uv venv --quiet --python 3.11 "$VENV"
fi
if ! "$VENV/bin/python" -c "import quixstreams, psycopg, email_validator, phonenumbers, pydantic_settings, fastavro" 2>/dev/null; then
    VIRTUAL_ENV="$VENV" uv pip install --quiet \
        "quixstreams[avro]>=3.10" "psycopg[binary]>=3.2" "email-validator>=2.2" \
        "phonenumbers>=8.13" "pydantic-settings>=2.6"
fi
echo "$VENV/bin/python"
