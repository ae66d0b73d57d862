#!/usr/bin/env bash
# Installs the system programs the test suite needs (Debian packages). Safe to run again.
# Today the gateway-core tests need python3 (it holds a loopback port in a full-backlog state to
# produce a real connect timeout). Later suites add nginx, haproxy, caddy and redis-server here.
set -euo pipefail
PACKAGES=(python3)
missing=()
for p in "${PACKAGES[@]}"; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  else
    echo "setup: missing ${missing[*]}; install them (apt-get install -y ${missing[*]}) as root" >&2
    exit 1
  fi
fi
for p in "${PACKAGES[@]}"; do
  command -v "$p" >/dev/null 2>&1 || { echo "setup: $p is still missing" >&2; exit 1; }
done
echo "setup: system packages present: ${PACKAGES[*]}"
