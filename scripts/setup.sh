#!/usr/bin/env bash
# Installs the system programs the tests and benchmarks need (Debian packages). Safe to run again.
# python3 holds a loopback port in a full-backlog state (a real connect timeout); nginx, haproxy
# and wrk are the side-by-side benchmark's peers and load generator; nginx, haproxy and caddy
# also run the generated fronting configs in the tests; openssl makes the doctor test's
# self-signed certificate; redis-server backs the shared rate-limit test; podman, buildah, runc and
# debootstrap build and run the container image (test/integration/package), systemd-analyze
# verifies the example unit; kubectl renders the Kubernetes manifests (kustomize); chromium (headless) drives the admin page and opens the doctor's
# HTML report in the browser tests. Then the Node 22 that the package test installs the tarball with
# (test/node22, pinned by its lockfile). A program still missing after this is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
# command name -> Debian package
declare -A PACKAGES=([python3]=python3 [nginx]=nginx [haproxy]=haproxy [caddy]=caddy [wrk]=wrk [taskset]=util-linux [openssl]=openssl [redis-server]=redis-server [podman]=podman [buildah]=buildah [runc]=runc [debootstrap]=debootstrap [systemd-analyze]=systemd [chromium]=chromium [kubectl]=kubernetes-client)
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
if [ ! -x test/node22/node_modules/node/bin/node ]; then
  npm ci --prefix test/node22 --no-audit --no-fund >/dev/null
fi
test/node22/node_modules/node/bin/node -e 'process.exit(process.versions.node.startsWith("22.") ? 0 : 1)' || { echo "setup: test/node22 does not hold a Node 22" >&2; exit 1; }
echo "setup: Node $(test/node22/node_modules/node/bin/node -v) for the package test"
