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

# --- Debian packages: Chromium + ChromeDriver (browser tests) ----------------------------------------
# (wasm-opt comes from npm's binaryen: Debian's 108 breaks wasm-bindgen's externref table.)
apt_missing=()
[ -x /usr/bin/chromium ] || apt_missing+=(chromium)
[ -x /usr/bin/chromedriver ] || apt_missing+=(chromium-driver)
if [ ${#apt_missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to apt-get install: ${apt_missing[*]}"
  say "installing Debian packages: ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null \
    || die "apt-get install ${apt_missing[*]} failed"
fi

# --- wasm32 standard library ----------------------------------------------------------------------
# Preferred: rustup's target. Fallback (no route to the toolchain server): Debian's rustc-web with
# std sources, built with -Z build-std; scripts/cargo-wasm.sh reads the choice from target/toolchain.env.
mkdir -p target
if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "SM_WASM_TOOLCHAIN=rustup" > target/toolchain.env
else
  say "adding the wasm32-unknown-unknown target"
  if rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
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
   && ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  say "adding the rust-src component"
  rustup component add rust-src >/dev/null 2>&1 || say "rust-src unavailable; the wasm builds with the prebuilt std"
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

# --- npm dev dependencies, from the committed lock file --------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.setup-stamp 2>/dev/null)" != "$lock_hash" ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null || die "npm ci failed"
  echo "$lock_hash" > node_modules/.setup-stamp
fi
