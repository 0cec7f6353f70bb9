//! Error types for usage and configuration problems: everything that ends with exit code 2.
//!
//! Problems with *targets* are not errors: they become results (`inconclusive`) or a target
//! status (`unreachable`). An [`Error`] means secgate was asked to do something it cannot do.

use std::path::PathBuf;

/// A usage, configuration or output error. Each renders as one line naming the culprit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A command-line flag or argument is invalid; the message starts with the flag's name.
    #[error("{0}")]
    Usage(String),
    /// A configuration file is invalid; `key` names the offending key where known.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// A usage error naming `flag`.
    pub fn usage(flag: &str, message: impl std::fmt::Display) -> Error {
        Error::Usage(format!("{flag}: {message}"))
    }
}

/// Result alias for secgate's fallible front-end operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
