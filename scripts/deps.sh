#!/usr/bin/env bash
# Installs what building and running dyno needs on Debian: system packages (apt) and a Rust
# toolchain (rustup, only when cargo is missing). Sourced by install.sh and test.sh.
set -euo pipefail

apt_packages=(
  build-essential pkg-config   # C parts of rusqlite (bundled SQLite) and libgit2
  git ca-certificates curl     # sources, rustup; `git push dyno main`
  python3 python3-venv         # the stack's Python: the python buildpack's virtualenvs, examples, fixtures
  bash procps util-linux mount # dyno init runs bash; tests use setpriv, umount
  ruby ruby-bundler            # the stack's Ruby and Bundler (the ruby buildpack)
  golang-go                    # the stack's Go (the go buildpack)
  tmux                         # tests/dash.rs drives `dyno dash` in a real terminal
  nftables iproute2            # dyno networking: the firewall table of a home's bridge; tests use `ip netns`
  libseccomp-dev               # libcontainer's libseccomp feature: the dynos' and builds' syscall filter
  e2fsprogs                    # mkfs.ext4: each dyno's writable layer on a loop-backed ext4 of DYNO_DISK_LIMIT
  libnss3-tools                # certutil: `dyno certs:trust` into the browsers' NSS databases (and its test)
)
# The stack's Node.js: Debian's nodejs and npm, unless the machine already has a node and npm
# (a NodeSource nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The packages of "$@" that are not installed, one a line.
not_installed() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Installs "$@" without starting any service they ship: a policy-rc.d that refuses, unless the
# machine has one of its own, removed again whatever apt did.
install_without_services() {
  local own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# dyno: installing packages, no service started\nexit 101\n' |
      as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "$@" || { [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d
}

mapfile -t missing < <(not_installed "${apt_packages[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  echo "-----> Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The add-on servers (heroku-postgresql, heroku-redis): Debian's PostgreSQL and Redis, which dyno
# runs itself, one cluster per DYNO_HOME and one redis-server per add-on. Debian's own services are
# not started (a policy-rc.d that refuses, unless the machine has one) and the `main` cluster the
# postgresql package creates is dropped again (one that was there before is left alone).
mapfile -t addon_missing < <(not_installed postgresql redis-server)
if [ ${#addon_missing[@]} -gt 0 ]; then
  echo "-----> Installing add-on servers: ${addon_missing[*]} (Debian's services not started)"
  had_clusters=$(ls -d /etc/postgresql/*/main 2>/dev/null || true)
  install_without_services "${addon_missing[@]}"
  for c in /etc/postgresql/*/main; do
    [ -d "$c" ] || continue
    case "$had_clusters" in *"$c"*) continue ;; esac
    v=${c#/etc/postgresql/}; v=${v%/main}
    as_root pg_dropcluster --stop "$v" main || echo "warning: could not drop the cluster $v/main" >&2
  done
  # The unit files may still be enabled for the next boot: dyno runs its own servers.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl disable redis-server postgresql >/dev/null 2>&1 || true
  fi
fi

# `dyno export`: mmdebstrap builds the image's stack layer; podman (with runc: crun fails on
# these cgroup v1 hosts; catatonit for the pause image `podman kube play` builds), skopeo and
# docker-registry are what its tests check the image with.
# docker-registry's own service would take port 5000: installed without starting it (the tests
# run their own on a free loopback port), and not enabled for the next boot.
mapfile -t export_missing < <(not_installed mmdebstrap podman runc catatonit skopeo docker-registry)
if [ ${#export_missing[@]} -gt 0 ]; then
  echo "-----> Installing export tools: ${export_missing[*]} (no service started)"
  install_without_services "${export_missing[@]}"
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "-----> Installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
