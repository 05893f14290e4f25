use clap::Parser;

fn main() {
    let cli = berth_builder::cli::Cli::parse();
    match berth_builder::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("berth-build: {e}");
            std::process::exit(1);
        }
    }
}
