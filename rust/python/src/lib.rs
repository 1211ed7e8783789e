//! `callsweep._native`: the thin binding over `callsweep-core`.
//!
//! It only moves Arrow arrays across the boundary (the Arrow PyCapsule interface, no copies),
//! releases the GIL while the kernel runs, and turns Rust errors into Python exceptions.

mod arrow_ffi;

use callsweep_core::{match_array, PatternSet};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrow_ffi::{import_array, ExportedArray};

fn core_error(err: callsweep_core::Error) -> PyErr {
    match err {
        callsweep_core::Error::UnsupportedType(_) => PyTypeError::new_err(err.to_string()),
    }
}

/// A compiled set of EQL wildcard patterns (`field : ("p1", "p2", ...)`): a value matches when
/// any pattern matches the whole of it.
#[pyclass(frozen, module = "callsweep._native")]
struct WildcardMatcher {
    set: PatternSet,
}

#[pymethods]
impl WildcardMatcher {
    #[new]
    fn new(patterns: Vec<String>) -> PyResult<Self> {
        if patterns.is_empty() {
            return Err(PyValueError::new_err(
                "a wildcard needs at least one pattern",
            ));
        }
        Ok(WildcardMatcher {
            set: PatternSet::new(&patterns),
        })
    }

    /// Whether one string matches.
    fn is_match(&self, value: &str) -> bool {
        self.set.is_match(value)
    }

    /// `(pattern, strategy)` for each pattern, e.g. `("?:\\Windows\\*", "prefix-slots")`.
    fn strategies(&self) -> Vec<(String, &'static str)> {
        self.set
            .patterns()
            .iter()
            .map(|p| (p.source().to_owned(), p.strategy_name()))
            .collect()
    }

    /// Matches a whole Arrow array (anything exporting `__arrow_c_array__` or
    /// `__arrow_c_stream__`) and returns a boolean Arrow array without nulls.
    fn match_arrow(&self, py: Python<'_>, array: &Bound<'_, PyAny>) -> PyResult<ExportedArray> {
        let chunks = import_array(array)?;
        let set = &self.set;
        let matched = py.detach(|| {
            chunks
                .iter()
                .map(|chunk| match_array(chunk.as_ref(), set))
                .collect::<Result<Vec<_>, _>>()
        });
        ExportedArray::concat_booleans(matched.map_err(core_error)?)
    }

    fn __repr__(&self) -> String {
        let sources: Vec<&str> = self.set.patterns().iter().map(|p| p.source()).collect();
        format!("WildcardMatcher({sources:?})")
    }
}

/// Whether the module was built with optimisations: timings of a debug build mean nothing.
#[pyfunction]
fn is_release_build() -> bool {
    !cfg!(debug_assertions)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WildcardMatcher>()?;
    m.add_class::<ExportedArray>()?;
    m.add_function(wrap_pyfunction!(is_release_build, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
