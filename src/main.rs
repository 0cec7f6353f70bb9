//! The `secgate` binary: parse the command line, run, map errors to exit code 2.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = secgate::cli::Cli::parse();
    match secgate::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("secgate: error: {err}");
            ExitCode::from(secgate::EXIT_USAGE)
        }
    }
}
