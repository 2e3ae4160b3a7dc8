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

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "-----> Installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The add-on servers (heroku-postgresql, heroku-redis): Debian's PostgreSQL and Redis, which dyno
# runs itself, one cluster per DYNO_HOME and one redis-server per add-on. Debian's own services are
# not started (a policy-rc.d that refuses, unless the machine has one) and the `main` cluster the
# postgresql package creates is dropped again (one that was there before is left alone).
addon_missing=()
for p in postgresql redis-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || addon_missing+=("$p")
done
if [ ${#addon_missing[@]} -gt 0 ]; then
  echo "-----> Installing add-on servers: ${addon_missing[*]} (Debian's services not started)"
  had_clusters=$(ls -d /etc/postgresql/*/main 2>/dev/null || true)
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# dyno: installing add-on servers, no service started\nexit 101\n' |
      as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${addon_missing[@]}" || { [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d; exit 1; }
  [ -z "$own_policy" ] || as_root rm -f /usr/sbin/policy-rc.d
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

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "-----> Installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
