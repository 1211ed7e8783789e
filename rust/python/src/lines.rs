//! NDJSON text: `select_lines`, the line prefilter of `callsweep_core::lines`, over any buffer
//! without copying it; `extract_fields`, the wanted fields of the kept lines as Arrow
//! (`callsweep_core::json_fields`); `pick_lines`, chosen lines of a block. All release the GIL.

use arrow_array::Array;
use callsweep_core::json_fields::{extract_fields as extract, FieldTree};
use callsweep_core::lines;
use callsweep_core::value_prefix::{ExcludedValues, JsonPrefix};
use callsweep_core::{LineTest, Selection};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::arrow_ffi::ExportedArray;

/// `(text, numbers, lines, overlong, next_number, excluded)`: the lines of `data` holding any
/// of `needles` (every line when there are none), each followed by `\n`; their 1-based
/// numbers counted from `first_number`; how many non-blank lines `data` held; `(number,
/// length)` of each line longer than `max_line` bytes, which is never kept; the number of the
/// line after; how many lines with a needle `exclude` left out. With `out`, the kept lines are
/// appended to it instead (one copy, into the caller's block) and `text` is empty.
/// `exclude`: `(field name, [(prefix, case_sensitive), ...])`, leaving out the lines proved to
/// give the field only values that start with a prefix (`callsweep_core::value_prefix`); a
/// prefix JSON cannot spell plainly is an error.
#[pyfunction]
#[pyo3(signature = (data, needles, max_line, first_number = 1, out = None, exclude = None))]
#[allow(clippy::type_complexity)] // the tuple is the Python signature
pub fn select_lines<'py>(
    py: Python<'py>,
    data: PyBuffer<u8>,
    needles: Vec<Vec<u8>>,
    max_line: usize,
    first_number: u64,
    out: Option<Bound<'py, PyByteArray>>,
    exclude: Option<(Vec<u8>, Vec<(String, bool)>)>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Vec<u64>,
    u64,
    Vec<(u64, u64)>,
    u64,
    u64,
)> {
    let ptr = data
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("select_lines needs a contiguous byte buffer"))?;
    // SAFETY: the buffer is exported (held by `data`) until this function returns, so its
    // memory stays valid while the GIL is released; callers pass bytes, or a view of the
    // reader's buffer, which nothing writes until the call returns.
    let bytes: &[u8] = unsafe { ptr.as_ref() };
    let mut test = LineTest::new(&needles);
    if let Some((name, prefixes)) = exclude {
        let prefixes = prefixes
            .iter()
            .map(|(head, case_sensitive)| {
                JsonPrefix::new(head, *case_sensitive).ok_or_else(|| {
                    PyValueError::new_err(format!("not a plain JSON prefix: {head:?}"))
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        test = test.excluding(ExcludedValues::new(&name, prefixes));
    }
    let (spans, selection) =
        py.detach(|| callsweep_core::select_spans(bytes, &test, max_line, first_number));
    let text = match out {
        Some(out) => {
            let at = out.len();
            out.resize(at + lines::joined_len(&spans))?;
            // SAFETY: the GIL is held and nothing else holds a view of `out` (the caller's
            // own block buffer, never exported while it grows).
            let tail = unsafe { &mut out.as_bytes_mut()[at..] };
            lines::join_into(bytes, &spans, tail);
            PyBytes::new(py, b"")
        }
        None => PyBytes::new_with(py, lines::joined_len(&spans), |buf| {
            lines::join_into(bytes, &spans, buf);
            Ok(())
        })?,
    };
    let Selection {
        numbers,
        lines,
        overlong,
        next_number,
        excluded,
        ..
    } = selection;
    Ok((text, numbers, lines, overlong, next_number, excluded))
}

/// The lines at the 0-based `indices` (ascending) of `text` (lines each followed by `\n`, as
/// `select_lines` gives them), each followed by `\n`.
#[pyfunction]
pub fn pick_lines<'py>(
    py: Python<'py>,
    text: PyBuffer<u8>,
    indices: Vec<usize>,
) -> PyResult<Bound<'py, PyBytes>> {
    let ptr = text
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("pick_lines needs a contiguous byte buffer"))?;
    // SAFETY: as in `select_lines`: the buffer stays exported until this function returns.
    let bytes: &[u8] = unsafe { ptr.as_ref() };
    let picked = py.detach(|| callsweep_core::pick_lines(bytes, &indices));
    Ok(PyBytes::new(py, &picked))
}

/// `(columns, bad)`: the fields `names` (dotted ECS paths) of every line of `text` (lines each
/// followed by `\n`, as `select_lines` gives them) as one Arrow struct array, a string or
/// list-of-strings field per name; or `(None, (index, message))` for the first line (0-based)
/// that is not a JSON object.
#[pyfunction]
#[allow(clippy::type_complexity)] // the tuple is the Python signature
pub fn extract_fields(
    py: Python<'_>,
    text: PyBuffer<u8>,
    names: Vec<String>,
) -> PyResult<(Option<ExportedArray>, Option<(usize, String)>)> {
    let ptr = text
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("extract_fields needs a contiguous byte buffer"))?;
    // SAFETY: as in `select_lines`: the buffer stays exported until this function returns;
    // a block's bytearray is no longer written once the block is handed out.
    let bytes: &[u8] = unsafe { ptr.as_ref() };
    let tree = FieldTree::new(&names);
    match py.detach(|| extract(bytes, &tree)) {
        Ok(array) => Ok((Some(ExportedArray::new(array.into_data())), None)),
        Err(bad) => Ok((None, Some((bad.index, bad.message)))),
    }
}
