use clap::Parser;

/// The error and its causes, on one line (a cause's own line breaks become spaces).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    if !s.contains('\n') {
        return s;
    }
    let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join(" ")
}

fn main() {
    let cli = berth_builder::cli::Cli::parse();
    match berth_builder::cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("berth-build: {}", chain(&e));
            std::process::exit(1);
        }
    }
}
