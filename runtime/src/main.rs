//! The `berth` binary: parse, run one command, report errors once.

use clap::Parser;

mod cli;

fn main() {
    let cli = cli::Cli::parse();
    let format = match cli.log_format {
        cli::LogFormat::Json => berth::logger::Format::Json,
        cli::LogFormat::Text => berth::logger::Format::Text,
    };
    berth::logger::init(cli.log.clone(), format, cli.debug);
    let argv: Vec<String> = std::env::args().collect();
    berth::logger::debug(&format!("berth {}: {argv:?}", env!("CARGO_PKG_VERSION")));
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            1
        }
    };
    std::process::exit(code);
}

/// A fatal error, once: in --log, and on stderr unless a log file takes it.
pub fn report(e: &berth::Error) {
    let msg = e.to_string();
    berth::logger::error(&msg);
    // Under a shim, berth's stderr is the container's (create and exec hand it on),
    // so with --log the error goes there only; a person at a terminal still sees it.
    if !berth::logger::to_file() || nix::unistd::isatty(std::io::stderr()).unwrap_or(false) {
        // "error" as in runc's `level=error` lines: tools search stderr for it.
        berth::logger::stderr_line(&format!("berth: error: {msg}"));
    }
}
