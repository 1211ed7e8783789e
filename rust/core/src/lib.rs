//! callsweep's per-byte work, free of Python: Elasticsearch-style wildcard patterns and their
//! evaluation over whole Arrow arrays, and EVTX files decoded into Arrow record batches. The PyO3
//! crate in `rust/python` only moves arrays and errors across the boundary.

pub mod compact;
pub mod evtx;
pub mod frames;
pub mod glob;
mod heads;
pub mod json_fields;
pub mod kernel;
pub mod lines;
pub mod parquet_out;
pub mod program;
pub mod tally;
pub mod value_prefix;
mod word_hash;

pub use glob::{Pattern, PatternSet};
pub use kernel::{match_array, match_array_ref, match_rows, match_rows_many};
pub use lines::{pick_lines, select_lines, select_spans, LineTest, Selection};
pub use program::{Program, RuleSet};

/// Every error this crate reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The array's type holds no strings to match.
    UnsupportedType(String),
    /// A condition program that does not fit the batch it is given.
    Program(String),
    /// A file that cannot be opened or read.
    Io {
        path: String,
        kind: std::io::ErrorKind,
        message: String,
    },
    /// A file that cannot be written.
    Write { path: String, message: String },
    /// A file that is not an EVTX log (bad file header).
    NotEvtx { path: String, reason: String },
    /// Arrays that do not fit together (columns of different lengths).
    Shape(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::UnsupportedType(t) => write!(
                f,
                "cannot match wildcards against an array of type {t}: \
                 expected strings, dictionary-encoded strings or lists of strings"
            ),
            Error::Program(msg) => write!(f, "cannot evaluate the condition: {msg}"),
            Error::Io { path, message, .. } => write!(f, "cannot read {path}: {message}"),
            Error::Write { path, message } => write!(f, "cannot write {path}: {message}"),
            Error::NotEvtx { path, reason } => write!(f, "{path} is not an EVTX file: {reason}"),
            Error::Shape(msg) => write!(f, "arrays that do not fit together: {msg}"),
        }
    }
}

impl std::error::Error for Error {}
