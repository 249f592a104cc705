//! Prints `dist/messages.js`: the words the wasm's messages stand for (src/words.rs).
//! `scripts/build.sh` runs it: `cargo run -q --example messages > dist/messages.js`.
fn main() {
    print!("{}", salla_salesmanago::words::module());
}
