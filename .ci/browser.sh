# Sourced by .ci/run: Debian's chromium for the test that renders the drift report as a person
# sees it (headless, no network). RAYMLOPS_REQUIRE_BROWSER makes that test fail, not skip,
# when the browser is missing.
install_test_browser() {
    if ! command -v chromium >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    fi
    export RAYMLOPS_REQUIRE_BROWSER=1
    echo "Browser for tests: $(chromium --version 2>/dev/null | head -n 1)"
}
