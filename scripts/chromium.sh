#!/usr/bin/env bash
# Debian's Chromium for the studio's end-to-end tests (Playwright drives /usr/bin/chromium).
# Installed as root, or through passwordless sudo; otherwise the e2e tests say why they skip.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
install() {
    "$@" apt-get install -y chromium >/dev/null 2>&1 || {
        "$@" apt-get update >/dev/null 2>&1 && "$@" apt-get install -y chromium >/dev/null 2>&1
    }
}
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then
    install
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    install sudo -n
else
    echo "chromium is not installed and this user cannot install it: the studio e2e tests will skip" >&2
fi
