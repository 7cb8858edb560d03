#!/usr/bin/env bash
# What some tests drive for real. Debian packages: chromium (the studio's end-to-end tests),
# nginx (the load balancer of compose.yaml, in front of two gateways) and dnsmasq (a DNS
# server on loopback answering the TXT records that prove an org's domain). Installed as root
# or through passwordless sudo; otherwise the tests that need them say why they skip.
# No service is started by the install (policy-rc.d), so nothing listens on port 80.
set -euo pipefail
# The OpenID provider the OIDC tests run (oidc-provider, from npm, by its lock file).
if [ ! -d tests/oidc/node_modules/oidc-provider ]; then
    (cd tests/oidc && npm ci --no-audit --no-fund >/dev/null)
fi
# Supabase's JavaScript client and tus-js-client, unchanged, for the storage and realtime tests.
if [ ! -d tests/supabase_js/node_modules/tus-js-client ]; then
    (cd tests/supabase_js && npm ci --no-audit --no-fund >/dev/null 2>&1)
fi
wanted=()
[ -x /usr/bin/chromium ] || wanted+=(chromium)
[ -x /usr/sbin/nginx ] || wanted+=(nginx)
[ -x /usr/sbin/dnsmasq ] || wanted+=(dnsmasq-base)
[ ${#wanted[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "${wanted[*]} not installed and this user cannot install them: the tests that need them will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
    made_policy=1
fi
install() { "${as_root[@]}" apt-get install -y "${wanted[@]}" >/dev/null 2>&1; }
install || { "${as_root[@]}" apt-get update >/dev/null 2>&1 && install; }
if [ "$made_policy" = 1 ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
