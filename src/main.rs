//! The `secgate` binary: parse the command line, run, map errors to exit code 2.

use std::process::ExitCode;

use clap::error::ErrorKind;

fn main() -> ExitCode {
    let cli = match secgate::cli::parse(&secgate::family_options(), std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match secgate::run(cli) {
        Ok(code) => code,
        Err(err) => {
            secgate::stderr_line(format_args!("secgate: error: {err}"));
            ExitCode::from(secgate::EXIT_USAGE)
        }
    }
}

/// Help and version go to stdout as clap renders them; every other argument error becomes one
/// line on stderr naming the flag, and exit code 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(secgate::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            secgate::stderr_line(format_args!("secgate: error: {first} (see --help)"));
            ExitCode::from(secgate::EXIT_USAGE)
        }
    }
}
