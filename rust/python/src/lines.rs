//! `select_lines`: the NDJSON line prefilter of `callsweep_core::lines`, over any buffer
//! (bytes, a memoryview of an mmap'd file) without copying it, the GIL released.

use callsweep_core::{LineTest, Selection};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// `(text, numbers, lines, overlong, next_number)`: the lines of `data` holding any of
/// `needles` (every line when there are none), each followed by `\n`; their 1-based numbers
/// counted from `first_number`; how many non-blank lines `data` held; `(number, length)` of
/// each line longer than `max_line` bytes, which is never kept; the number of the line after.
#[pyfunction]
#[pyo3(signature = (data, needles, max_line, first_number = 1))]
#[allow(clippy::type_complexity)] // the tuple is the Python signature
pub fn select_lines<'py>(
    py: Python<'py>,
    data: PyBuffer<u8>,
    needles: Vec<Vec<u8>>,
    max_line: usize,
    first_number: u64,
) -> PyResult<(Bound<'py, PyBytes>, Vec<u64>, u64, Vec<(u64, u64)>, u64)> {
    let ptr = data
        .as_slice_ptr()
        .ok_or_else(|| PyValueError::new_err("select_lines needs a contiguous byte buffer"))?;
    // SAFETY: the buffer is exported (held by `data`) until this function returns, so its
    // memory stays valid while the GIL is released; callers pass immutable bytes or a
    // read-only mmap.
    let bytes: &[u8] = unsafe { ptr.as_ref() };
    let test = LineTest::new(&needles);
    let Selection {
        text,
        numbers,
        lines,
        overlong,
        next_number,
    } = py.detach(|| callsweep_core::select_lines(bytes, &test, max_line, first_number));
    Ok((
        PyBytes::new(py, &text),
        numbers,
        lines,
        overlong,
        next_number,
    ))
}
