//! Prints `dist/messages.js`: the words the wasm's messages stand for (src/words.rs).
//! `scripts/build.sh` runs it: `cargo run -q --example messages > dist/messages.js`.
fn main() {
    // Native only: in the wasm the words are codes (so a wasm32 check of every target still
    // compiles this, to nothing).
    #[cfg(not(target_arch = "wasm32"))]
    print!("{}", salla_salesmanago::words::module());
}
