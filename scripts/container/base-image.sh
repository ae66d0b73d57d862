#!/usr/bin/env bash
# Builds a stand-in for the Containerfile's base image (the official Node image), for machines
# that reach no image registry: Debian bookworm by debootstrap (minbase), plus the Node binary of
# the npm `node` package this checkout pins and the npm that runs this script, laid out as the
# official image lays them out (/usr/local/bin/node, /usr/local/lib/node_modules/npm, user `node`
# uid 1000). It is tagged with the name the Containerfile's FROM uses. The machine's CA bundle is
# added (NODE_EXTRA_CA_CERTS) so npm inside the build reaches the registry through this sandbox's
# egress proxy. Skips the work if the image exists. Needs root, debootstrap and podman.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/scripts/container/containers.conf}"
image="$(sed -n 's/^ARG NODE_IMAGE=//p' Containerfile)"
[ -n "$image" ] || { echo "base-image: no ARG NODE_IMAGE= in Containerfile" >&2; exit 1; }
if podman image exists "$image"; then echo "base-image: $image present"; exit 0; fi

node_bin="$PWD/node_modules/node/bin/node"
[ -x "$node_bin" ] || { echo "base-image: $node_bin missing; run npm ci" >&2; exit 1; }
npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
[ -f "$npm_dir/package.json" ] || { echo "base-image: cannot find npm's package directory" >&2; exit 1; }
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
mirror="${mirror:-http://deb.debian.org/debian}"

root="$(mktemp -d /tmp/sluice-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/sandbox-ca.crt"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
version="$("$node_bin" -p process.versions.node)"
tar -C "$root" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$version" \
  --change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/sandbox-ca.crt' \
  --change 'CMD ["node"]' - "$image" >/dev/null
echo "base-image: built $image (Debian bookworm minbase, Node $version)"
