#!/usr/bin/env bash
# Regenerates the committed completions/ and man/ from the CLI definition (tests check they are
# current).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/dyno
mkdir -p completions man
"$bin" completions bash > completions/dyno.bash
"$bin" completions zsh > completions/_dyno
"$bin" completions fish > completions/dyno.fish
rm -f man/*.1
"$bin" man man
