# Sourced by .ci/run: make Debian's `prometheus` available to tests/integration/test_prometheus.py
# and export RAYMLOPS_TEST_PROMETHEUS (the test then fails rather than skips without it).
# The package's own service is never started: the test runs its own server on 127.0.0.1.
install_test_prometheus() {
    if ! command -v prometheus >/dev/null 2>&1; then
        local policy=/usr/sbin/policy-rc.d added=""
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added=1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
        if [ -n "$added" ]; then rm -f "$policy"; fi
    fi
    RAYMLOPS_TEST_PROMETHEUS=$(command -v prometheus)
    export RAYMLOPS_TEST_PROMETHEUS
    echo "Prometheus for tests: $RAYMLOPS_TEST_PROMETHEUS ($(prometheus --version 2>&1 | head -n 1))"
}
