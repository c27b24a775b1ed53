#!/bin/sh
# The dashboard's browser tests drive Debian's Chromium (tests/ui/conftest.py): install it when it is missing.
set -eu
if command -v chromium >/dev/null 2>&1 || [ -n "${M365_MOCK_CHROMIUM:-}" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: no chromium and no apt-get: install Chromium, or set M365_MOCK_CHROMIUM to one" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-chromium: installing Debian's chromium for the dashboard's browser tests" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
