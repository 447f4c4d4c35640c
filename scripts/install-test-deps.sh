#!/bin/sh
# Best-effort install of the system packages some tests (or benchmarks) use; never fails the build.
#
#   install-test-deps.sh [PACKAGE...]
#
# With no arguments, the packages the tests use:
#   chromium, chromium-driver  headless browser for the HTML export test (tests/replay/test_export.py)
#   fonts-dejavu-core          monospace font for PNG rendering and the browser
# `make bench-deps` names its own: ripgrep (the search benchmark's comparison).
#
# Installs only what is missing, only as root, only where apt-get exists (Debian/Ubuntu).
# Anything else prints why and exits 0: what needs a package skips with a reason (or, for the
# benchmark without ripgrep, compares with grep instead).

PACKAGES="${*:-chromium chromium-driver fonts-dejavu-core}"

missing=""
for pkg in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    echo "install-test-deps: all present ($PACKAGES)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: no apt-get; install$missing yourself (what needs them skips)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: not root; run as root to install$missing (what needs them skips)"
    exit 0
fi

echo "install-test-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; then
    echo "install-test-deps: installed$missing"
else
    echo "install-test-deps: apt-get failed; continuing without$missing (what needs them skips)"
fi
exit 0
