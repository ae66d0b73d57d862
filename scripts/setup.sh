#!/usr/bin/env bash
# Installs the system programs the tests and benchmarks need (Debian packages). Safe to run again.
# python3 holds a loopback port in a full-backlog state (a real connect timeout); nginx, haproxy
# and wrk are the side-by-side benchmark's peers and load generator; nginx, haproxy and caddy
# also run the generated fronting configs in the tests; openssl makes the doctor test's
# self-signed certificate; redis-server backs the shared rate-limit test. A program still missing
# after this is an error, never a skip.
set -euo pipefail
# command name -> Debian package
declare -A PACKAGES=([python3]=python3 [nginx]=nginx [haproxy]=haproxy [caddy]=caddy [wrk]=wrk [taskset]=util-linux [openssl]=openssl [redis-server]=redis-server)
missing=()
for cmd in "${!PACKAGES[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${PACKAGES[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages ${missing[*]}; install them as root (apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
fi
for cmd in "${!PACKAGES[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || { echo "setup: $cmd is still missing" >&2; exit 1; }
done
echo "setup: present: ${!PACKAGES[*]}"
