//! The static in-container probe (see `berth_conformance::probe`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(berth_conformance::probe::main_with_args(&args));
}
