//! The `gatehouse` binary: parses the command line and wires adapters together.

fn main() {
    println!("gatehouse {}", env!("CARGO_PKG_VERSION"));
}
