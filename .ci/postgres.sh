# Sourced by .ci/run: start a throw-away PostgreSQL on 127.0.0.1 for the registry tests and
# export RAYMLOPS_TEST_PG_URL. Installs Debian's server package when it is missing.
start_test_postgres() {
    local bin port="${RAYMLOPS_TEST_PG_PORT:-55432}"
    if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    PG_TEST_DATA=$(mktemp -d /tmp/raymlops-pg.XXXXXX)
    chown postgres "$PG_TEST_DATA"
    runuser -u postgres -- "$bin/initdb" -D "$PG_TEST_DATA/data" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$bin/pg_ctl" -D "$PG_TEST_DATA/data" -l "$PG_TEST_DATA/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TEST_DATA" start >/dev/null
    PG_TEST_BIN=$bin
    export RAYMLOPS_TEST_PG_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    echo "PostgreSQL for tests: 127.0.0.1:$port"
}

stop_test_postgres() {
    if [ -n "${PG_TEST_DATA:-}" ]; then
        runuser -u postgres -- "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DATA/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$PG_TEST_DATA"
    fi
}
