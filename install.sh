#!/usr/bin/env bash
# Installs dyno: system packages, the release binary, the shipped buildpacks, shell completions
# and man pages. Run it again to upgrade: a running daemon is replaced on the next command and
# its dynos are re-adopted, not restarted.
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=${PREFIX:-/usr/local}

. scripts/deps.sh
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

echo "-----> Building dyno (release)"
cargo build --release --locked --quiet

echo "-----> Installing into $PREFIX"
as_root install -d "$PREFIX/bin" "$PREFIX/share/dyno" "$PREFIX/share/man/man1"
# Replace the binary by rename, so running daemons and shims keep their own copy.
as_root install -m 0755 target/release/dyno "$PREFIX/bin/.dyno.new"
as_root mv -f "$PREFIX/bin/.dyno.new" "$PREFIX/bin/dyno"
as_root rm -rf "$PREFIX/share/dyno/buildpacks.new"
as_root cp -R buildpacks "$PREFIX/share/dyno/buildpacks.new"
as_root rm -rf "$PREFIX/share/dyno/buildpacks"
as_root mv "$PREFIX/share/dyno/buildpacks.new" "$PREFIX/share/dyno/buildpacks"

as_root install -d /usr/share/bash-completion/completions "$PREFIX/share/zsh/site-functions" \
  /usr/share/fish/vendor_completions.d
"$PREFIX/bin/dyno" completions bash | as_root tee /usr/share/bash-completion/completions/dyno >/dev/null
"$PREFIX/bin/dyno" completions zsh | as_root tee "$PREFIX/share/zsh/site-functions/_dyno" >/dev/null
"$PREFIX/bin/dyno" completions fish | as_root tee /usr/share/fish/vendor_completions.d/dyno.fish >/dev/null
as_root "$PREFIX/bin/dyno" man "$PREFIX/share/man/man1"

echo "-----> dyno $("$PREFIX/bin/dyno" --version | cut -d' ' -f2) installed: try \`cd examples/hello && dyno up\`"
