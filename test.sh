#!/usr/bin/env bash
# The whole test suite: installs what it needs, then runs every unit and integration test.
# Integration tests start real containers, so this runs as root (CI does); each test uses its
# own DYNO_HOME and cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")"

. scripts/deps.sh
if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the tests start real containers and need root: run it with sudo" >&2
  exit 1
fi

# Lint first: formatting, clippy (warnings are errors) and the dependency policy in deny.toml
# (licenses, banned crates, sources; the RustSec advisories need GitHub: see the README).
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
cargo fmt --check
cargo clippy --locked --quiet --all-targets -- -D warnings
if ! cargo deny --version 2>/dev/null | grep -q "^cargo-deny 0.20"; then
  cargo install --locked --quiet cargo-deny --version 0.20.2
fi
cargo deny --offline --log-level error check bans licenses sources

cargo build --locked --quiet --all-targets
# Three at a time: enough to overlap the waits, little enough for a 2-core machine.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --no-fail-fast -- --test-threads=3 2>&1 | tee "$log" || status=$?
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
