#!/usr/bin/env bash
# Installs everything the local stack and the Python environment need; idempotent.
# Downloads and builds are cached under ${XDG_CACHE_HOME:-~/.cache}/leadstream (plus the
# standard Maven, Go and uv caches), never inside the checkout.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE="${LEADSTREAM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/leadstream}"
KAFKA_VERSION="${LEADSTREAM_KAFKA_VERSION:-4.1.1}"
REGISTRY_VERSION="${LEADSTREAM_REGISTRY_VERSION:-3.3.3}"
FERRETDB_VERSION="${LEADSTREAM_FERRETDB_VERSION:-v1.24.2}"
PG_BIN="${LEADSTREAM_POSTGRES_BIN_DIR:-/usr/lib/postgresql/15/bin}"
MVN_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }
sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi; }

mkdir -p "$CACHE"

# --- Debian packages -------------------------------------------------------------------
apt_missing=()
[ -x "$PG_BIN/postgres" ] || apt_missing+=(postgresql)
command -v redis-server >/dev/null || apt_missing+=(redis-server)
command -v kcat >/dev/null || apt_missing+=(kcat)
command -v wrk >/dev/null || apt_missing+=(wrk)  # the ingest benchmarks load the server with it
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)  # the status page test drives it headless
if [ ${#apt_missing[@]} -gt 0 ]; then
  need apt-get "install ${apt_missing[*]} with your system's package manager"
  say "apt-get install ${apt_missing[*]}"
  sudo_ apt-get update -qq || die "apt-get update failed: check the network or your apt sources"
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${apt_missing[@]}" >/dev/null || die "apt-get install ${apt_missing[*]} failed"
fi
# The Debian postinst may start its own cluster/daemon on the default ports: stop them, the
# project runs its own servers under .local/.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_lsclusters -h | awk '$4=="online"{print $1, $2}' | while read -r v c; do
    sudo_ pg_ctlcluster "$v" "$c" stop || true; done
fi
if pgrep -x redis-server >/dev/null && ! grep -qs . .local/run/redis.pid; then
  sudo_ service redis-server stop >/dev/null 2>&1 || true
fi

# --- Python environment ----------------------------------------------------------------
if ! command -v uv >/dev/null; then
  need python3 "install Python 3.11"
  say "pip install uv"
  python3 -m pip install --user --quiet uv || die "pip install uv failed: check access to PyPI"
  export PATH="$HOME/.local/bin:$PATH"
fi
say "uv sync (locked)"
uv sync --frozen --all-packages --quiet || die "uv sync failed: is uv.lock up to date? (uv lock)"

# --- Kafka -----------------------------------------------------------------------------
need java "install a Java 17+ runtime (Debian: default-jre-headless)"
need mvn "install Maven (Debian: maven)"
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
if [ ! -f "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]; then
  say "Kafka $KAFKA_VERSION jars from Maven Central"
  tmp="$KAFKA_LIBS.tmp"; rm -rf "$tmp"
  mvn -B -q -f infra/kafka/pom.xml -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" \
    || die "downloading Kafka jars failed: check access to Maven Central, then re-run make install"
  rm -rf "$KAFKA_LIBS"; mv "$tmp" "$KAFKA_LIBS"
fi

# --- Apicurio Registry -----------------------------------------------------------------
REG_HOME="$CACHE/apicurio-$REGISTRY_VERSION"
if [ ! -f "$REG_HOME/quarkus-run.jar" ]; then
  say "Apicurio Registry $REGISTRY_VERSION from Maven Central"
  mvn -B -q "$MVN_PLUGIN:copy" \
    -Dartifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all" \
    -DoutputDirectory="$CACHE/downloads" \
    || die "downloading Apicurio Registry failed: check access to Maven Central"
  rm -rf "$REG_HOME.tmp"; mkdir -p "$REG_HOME.tmp"
  tar -xzf "$CACHE/downloads/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz" -C "$REG_HOME.tmp" \
    || die "unpacking Apicurio Registry failed: delete $CACHE/downloads and re-run"
  rm -rf "$REG_HOME"; mv "$REG_HOME.tmp" "$REG_HOME"
fi
uv run --frozen --quiet python -c \
  'from leadstream.infra.servers import find_java, REGISTRY_MIN_JAVA; find_java(REGISTRY_MIN_JAVA)' \
  || die "Apicurio Registry needs Java 21+: install one, or set LEADSTREAM_REGISTRY_JAVA"

# --- FerretDB ----------------------------------------------------------------------------
FDB_BIN="$CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"
if [ ! -x "$FDB_BIN" ]; then
  need go "install Go 1.22+"
  say "FerretDB $FERRETDB_VERSION (go build; a few minutes the first time)"
  # `go install ...@version` fails here: it reads the module's version list, which the proxy
  # refuses. Download the exact version instead and build it as its own main module, with the
  # build/version/version.txt its release process would have generated.
  dir=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
    || die "downloading FerretDB $FERRETDB_VERSION failed: check access to the Go module proxy"
  src="$CACHE/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src"; mkdir -p "$(dirname "$src")"; cp -r "$dir" "$src"; chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" > "$src/build/version/version.txt"
  (cd "$src" && go build -o "$FDB_BIN.tmp" ./cmd/ferretdb) || die "building FerretDB failed"
  mv "$FDB_BIN.tmp" "$FDB_BIN"; rm -rf "$src"
fi

say "install complete"
