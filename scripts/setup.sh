#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need, on a fresh Debian machine of this
# project's kind. Idempotent: each step checks first and is silent when its tool is already there.
# Fails loudly, naming the missing piece, instead of leaving a half set-up machine.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || die "cargo is not installed (expected rustup's toolchain in ~/.cargo/bin)"
command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"

# --- Debian packages: Chromium + ChromeDriver (browser tests), PostgreSQL (the test server) ---------
# (wasm-opt comes from npm's binaryen: Debian's 108 breaks wasm-bindgen's externref table.)
# PostgreSQL: its server binaries (/usr/lib/postgresql/<version>/bin) and its `postgres` user, for
# scripts/pg.sh's throw-away server; nothing here starts or uses the package's own cluster.
apt_missing=()
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_missing+=(chromium-driver)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_missing+=(postgresql)
if [ ${#apt_missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install: ${apt_missing[*]}"
  say "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null \
    || die "apt-get install ${apt_missing[*]} failed"
fi

# --- the pinned Rust toolchain (rust-toolchain.toml), its wasm32 std and std sources ----------------
# Preferred: rustup installs the pinned version with its components and target. Where rustup cannot
# download it but the installed stable *is* that version, stable is linked under the pinned name.
# Last fallback (no route to the toolchain server): Debian's rustc-web with std sources, built with
# -Z build-std; scripts/build.sh reads the choice from target/toolchain.env.
channel=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
[ -n "$channel" ] || die "rust-toolchain.toml names no channel"
mkdir -p target
if ! rustup run "$channel" rustc -V >/dev/null 2>&1; then
  say "installing the Rust toolchain $channel (rust-toolchain.toml)"
  if ! rustup toolchain install "$channel" --profile minimal -c rustfmt,clippy,rust-src \
        -t wasm32-unknown-unknown >/dev/null 2>&1; then
    stable_version=$(rustup run stable rustc -V 2>/dev/null | awk '{print $2}')
    [ "$stable_version" = "$channel" ] \
      || die "rustup could not install Rust $channel, and the installed stable is ${stable_version:-missing}"
    say "rustup could not download $channel; linking the installed stable ($stable_version) under that name"
    rustup toolchain link "$channel" "$(rustup run stable rustc --print sysroot)" \
      || die "rustup toolchain link $channel failed"
  fi
fi
# Components and the target, on the pinned toolchain (or on stable, when the pinned one is stable linked).
toolchain_for_adds=$channel
if [ -L "$(rustup run "$channel" rustc --print sysroot)" ] || ! rustup component list --toolchain "$channel" >/dev/null 2>&1; then
  toolchain_for_adds=stable
fi
for component in rustfmt clippy; do
  rustup component list --installed --toolchain "$channel" 2>/dev/null | grep -q "^$component" \
    || rustup component add "$component" --toolchain "$toolchain_for_adds" >/dev/null 2>&1 \
    || die "rustup could not add $component to Rust $channel"
done
if rustup target list --installed --toolchain "$channel" 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "SM_WASM_TOOLCHAIN=rustup" > target/toolchain.env
else
  say "adding the wasm32-unknown-unknown target"
  if rustup target add wasm32-unknown-unknown --toolchain "$toolchain_for_adds" >/dev/null 2>&1; then
    echo "SM_WASM_TOOLCHAIN=rustup" > target/toolchain.env
  else
    say "rustup could not add wasm32-unknown-unknown; using Debian's rustc-web fallback"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq rustc-web cargo-web rust-web-src lld-19 >/dev/null \
      || die "neither rustup nor Debian's rustc-web could provide the wasm32 target"
    echo "SM_WASM_TOOLCHAIN=debian" > target/toolchain.env
  fi
fi

# The standard library's sources, for the size-optimised wasm build (scripts/build.sh).
if [ "$(cat target/toolchain.env)" = "SM_WASM_TOOLCHAIN=rustup" ] \
   && ! rustup component list --installed --toolchain "$channel" 2>/dev/null | grep -q '^rust-src'; then
  say "adding the rust-src component"
  rustup component add rust-src --toolchain "$toolchain_for_adds" >/dev/null 2>&1 \
    || say "rust-src unavailable; the wasm builds with the prebuilt std"
fi

# --- wasm-bindgen CLI at exactly the crate's pinned version ----------------------------------------
want=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
[ -n "$want" ] || die "Cargo.toml must pin wasm-bindgen exactly (wasm-bindgen = \"=X.Y.Z\")"
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (had: ${have:-none}); this takes a few minutes once"
  # --force: cargo's own record may say "installed" while the binary is gone or another version.
  cargo install -q --force wasm-bindgen-cli --version "$want" \
    || die "cargo install wasm-bindgen-cli --version $want failed"
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  [ "$have" = "$want" ] || die "wasm-bindgen $want was installed but \`wasm-bindgen --version\` says '${have:-nothing}'"
fi
for tool in wasm-bindgen-test-runner /usr/bin/chromium /usr/bin/chromedriver; do
  command -v "$tool" >/dev/null || die "$tool is missing after set-up"
done
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || die "PostgreSQL's initdb is missing after set-up"
id -u postgres >/dev/null 2>&1 || die "the user postgres (Debian's package postgresql makes it) is missing after set-up"

# --- npm dev dependencies, from the committed lock file --------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.setup-stamp 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed"
  echo "$lock_hash" > node_modules/.setup-stamp
fi
