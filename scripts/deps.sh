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

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "-----> Installing Rust (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi
