//! `callsweep._native`: the thin binding over `callsweep-core`.
//!
//! It only moves Arrow arrays across the boundary (the Arrow PyCapsule interface, no copies),
//! releases the GIL while the kernel runs, and turns Rust errors into Python exceptions.

mod arrow_ffi;
mod evtx;
mod lines;
mod parquet;

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, StructArray};
use arrow_schema::{DataType, Field};
use callsweep_core::{match_array, PatternSet, Program, RuleSet};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrow_ffi::{import_array, ExportedArray};

fn core_error(err: callsweep_core::Error) -> PyErr {
    match err {
        callsweep_core::Error::UnsupportedType(_) => PyTypeError::new_err(err.to_string()),
        callsweep_core::Error::Program(_) | callsweep_core::Error::Shape(_) => {
            PyValueError::new_err(err.to_string())
        }
        callsweep_core::Error::Io { .. } | callsweep_core::Error::NotEvtx { .. } => {
            evtx::open_error(err)
        }
        callsweep_core::Error::Write { .. } => {
            pyo3::exceptions::PyOSError::new_err(err.to_string())
        }
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

/// A rule condition compiled to a program over the columns of a batch, evaluated with
/// short-circuits (see `callsweep_core::program`).
///
/// Built from nested tuples: `("const", bool)`, `("column", i)` (a boolean field computed by
/// the caller), `("wildcard", i, [patterns])`, `("not", p)`, `("and", [p, ...])`,
/// `("or", [p, ...])`; `i` indexes the columns given to `evaluate`.
#[pyclass(frozen, module = "callsweep._native")]
struct Condition {
    program: Program,
}

#[pymethods]
impl Condition {
    #[new]
    fn new(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Condition {
            program: build_program(spec)?,
        })
    }

    /// The condition on every row of a batch given as its columns (Arrow arrays or streams of
    /// equal length, e.g. polars Series); a boolean array without nulls.
    fn evaluate(&self, py: Python<'_>, columns: Vec<Bound<'_, PyAny>>) -> PyResult<ExportedArray> {
        let columns = columns
            .iter()
            .map(|c| import_array(c).and_then(single_chunk))
            .collect::<PyResult<Vec<_>>>()?;
        let len = columns.first().map_or(0, |c| c.len());
        let program = &self.program;
        let result = py.detach(|| program.evaluate(&columns, len));
        ExportedArray::concat_booleans(vec![result.map_err(core_error)?])
    }

    fn __repr__(&self) -> String {
        format!("Condition({:?})", self.program)
    }
}

/// Several rules' conditions over one batch, sharing programs (`callsweep_core::program`):
/// built from the shared programs' specs and the rules' (as for `Condition`, where
/// `("shared", k)` reads the k-th shared program; a shared program reads earlier ones only).
#[pyclass(frozen, module = "callsweep._native")]
struct Rules {
    set: RuleSet,
}

#[pymethods]
impl Rules {
    #[new]
    fn new(shared: Vec<Bound<'_, PyAny>>, rules: Vec<Bound<'_, PyAny>>) -> PyResult<Self> {
        let shared = shared.iter().map(build_program).collect::<PyResult<_>>()?;
        let rules = rules.iter().map(build_program).collect::<PyResult<_>>()?;
        Ok(Rules {
            set: RuleSet::new(shared, rules).map_err(core_error)?,
        })
    }

    /// Whether some rule holds on each row (columns as for `Condition.evaluate`).
    fn any(&self, py: Python<'_>, columns: Vec<Bound<'_, PyAny>>) -> PyResult<ExportedArray> {
        let (columns, len) = batch_columns(&columns)?;
        let set = &self.set;
        let result = py.detach(|| set.any(&columns, len));
        ExportedArray::concat_booleans(vec![result.map_err(core_error)?])
    }

    /// Each rule's value on each row: a struct array of booleans, field `i` rule i's.
    fn each(&self, py: Python<'_>, columns: Vec<Bound<'_, PyAny>>) -> PyResult<ExportedArray> {
        let (columns, len) = batch_columns(&columns)?;
        let set = &self.set;
        let values = py.detach(|| set.each(&columns, len)).map_err(core_error)?;
        let fields: Vec<Arc<Field>> = (0..values.len())
            .map(|i| Arc::new(Field::new(i.to_string(), DataType::Boolean, false)))
            .collect();
        let arrays: Vec<ArrayRef> = values
            .into_iter()
            .map(|v| Arc::new(v) as ArrayRef)
            .collect();
        let array = if arrays.is_empty() {
            StructArray::new_empty_fields(len, None)
        } else {
            StructArray::new(fields.into(), arrays, None)
        };
        Ok(ExportedArray::new(array.into_data()))
    }

    fn __len__(&self) -> usize {
        self.set.rules()
    }
}

fn batch_columns(columns: &[Bound<'_, PyAny>]) -> PyResult<(Vec<ArrayRef>, usize)> {
    let columns = columns
        .iter()
        .map(|c| import_array(c).and_then(single_chunk))
        .collect::<PyResult<Vec<_>>>()?;
    let len = columns.first().map_or(0, |c| c.len());
    Ok((columns, len))
}

/// The one array of a column; the caller rechunks (a column's chunks would have to line up with
/// every other column's).
fn single_chunk(mut chunks: Vec<ArrayRef>) -> PyResult<ArrayRef> {
    match chunks.len() {
        1 => Ok(chunks.pop().expect("one chunk")),
        n => Err(PyValueError::new_err(format!(
            "expected each column in one chunk, got {n} chunks"
        ))),
    }
}

fn build_program(spec: &Bound<'_, PyAny>) -> PyResult<Program> {
    let bad = || PyValueError::new_err(format!("not a condition program: {spec}"));
    let spec = spec.cast::<PyTuple>().map_err(|_| bad())?;
    let tag: String = spec.get_item(0)?.extract()?;
    let arg = |i: usize| spec.get_item(i).map_err(|_| bad());
    Ok(match (tag.as_str(), spec.len()) {
        ("const", 2) => Program::Const(arg(1)?.extract()?),
        ("column", 2) => Program::Column(arg(1)?.extract()?),
        ("shared", 2) => Program::Shared(arg(1)?.extract()?),
        // `wildcard`: `:` / `like~` (ASCII case folded); `like`: case-sensitive patterns;
        // `equals`: `==` / `in` on strings, each value taken literally.
        ("wildcard", 3) | ("like", 3) | ("equals", 3) => {
            let patterns: Vec<String> = arg(2)?.extract()?;
            if patterns.is_empty() {
                return Err(bad());
            }
            let set = match tag.as_str() {
                "wildcard" => PatternSet::new(&patterns),
                "like" => PatternSet::with_case(&patterns, true),
                _ => PatternSet::literals(&patterns),
            };
            Program::Wildcard {
                column: arg(1)?.extract()?,
                set,
            }
        }
        ("not", 2) => Program::Not(Box::new(build_program(&arg(1)?)?)),
        ("and", 2) | ("or", 2) => {
            let parts = arg(1)?
                .try_iter()?
                .map(|p| build_program(&p?))
                .collect::<PyResult<Vec<_>>>()?;
            if tag == "and" {
                Program::And(parts)
            } else {
                Program::Or(parts)
            }
        }
        _ => return Err(bad()),
    })
}

/// Each value of a string column up to its first `|`: the first frame of a CallTrace.
#[pyfunction]
fn first_frames(py: Python<'_>, column: Bound<'_, PyAny>) -> PyResult<ExportedArray> {
    let array = import_array(&column).and_then(single_chunk)?;
    let cut = py.detach(|| callsweep_core::frames::before_first(array.as_ref(), b'|'));
    Ok(ExportedArray::new(cut.map_err(core_error)?.to_data()))
}

/// A string view column (or a list of them) with its values copied into buffers of its own,
/// so that it no longer keeps alive the buffers it was filtered from.
#[pyfunction]
fn compact_views(py: Python<'_>, column: Bound<'_, PyAny>) -> PyResult<ExportedArray> {
    let array = import_array(&column).and_then(single_chunk)?;
    let compacted = py.detach(|| callsweep_core::compact::compact(&array));
    Ok(ExportedArray::new(compacted.to_data()))
}

/// A CallTrace column's values copied into buffers of their own (as `compact_views` does) and
/// their first frames, cut in the same pass: `(values, first frames)`.
#[pyfunction]
fn compact_with_first_frames(
    py: Python<'_>,
    column: Bound<'_, PyAny>,
) -> PyResult<(ExportedArray, ExportedArray)> {
    let array = import_array(&column).and_then(single_chunk)?;
    let (values, frames) = py
        .detach(|| callsweep_core::compact::compact_with_first_frames(&array, b'|'))
        .map_err(core_error)?;
    Ok((
        ExportedArray::new(values.to_data()),
        ExportedArray::new(frames.to_data()),
    ))
}

/// The rows of equal-length columns (each an Arrow array or stream of string views or nulls)
/// grouped by their views: `(first row, count)` of each group, in row order; groups holding
/// equal values under different views are the caller's to merge (`callsweep_core::tally`).
#[pyfunction]
fn tally(py: Python<'_>, columns: Vec<Bound<'_, PyAny>>) -> PyResult<(Vec<u64>, Vec<u64>)> {
    let columns = columns
        .iter()
        .map(import_array)
        .collect::<PyResult<Vec<_>>>()?;
    let tally = py
        .detach(|| callsweep_core::tally::tally(&columns))
        .map_err(core_error)?;
    Ok((tally.first_rows, tally.counts))
}

/// Whether the module was built with optimisations: timings of a debug build mean nothing.
#[pyfunction]
fn is_release_build() -> bool {
    !cfg!(debug_assertions)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<WildcardMatcher>()?;
    m.add_class::<Condition>()?;
    m.add_class::<Rules>()?;
    m.add_class::<ExportedArray>()?;
    m.add_class::<evtx::EvtxReader>()?;
    m.add_class::<parquet::ParquetWriter>()?;
    m.add_class::<evtx::ExportedSchema>()?;
    m.add_function(wrap_pyfunction!(evtx::evtx_schema, m)?)?;
    m.add_function(wrap_pyfunction!(evtx::evtx_layout_schema, m)?)?;
    m.add_function(wrap_pyfunction!(is_release_build, m)?)?;
    m.add_function(wrap_pyfunction!(first_frames, m)?)?;
    m.add_function(wrap_pyfunction!(compact_views, m)?)?;
    m.add_function(wrap_pyfunction!(compact_with_first_frames, m)?)?;
    m.add_function(wrap_pyfunction!(tally, m)?)?;
    m.add_function(wrap_pyfunction!(lines::select_lines, m)?)?;
    m.add_function(wrap_pyfunction!(lines::extract_fields, m)?)?;
    m.add_function(wrap_pyfunction!(lines::pick_lines, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
