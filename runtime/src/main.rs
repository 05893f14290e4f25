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
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = e.to_string();
            berth::logger::error(&msg);
            eprintln!("berth: {msg}");
            1
        }
    };
    std::process::exit(code);
}
