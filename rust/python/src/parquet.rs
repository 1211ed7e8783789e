//! `ParquetWriter`: `callsweep_core::parquet_out` for the layout writer, taking pyarrow tables.

use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::ffi::FFI_ArrowSchema;
use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::RecordBatch;
use arrow_schema::Schema;
use callsweep_core::parquet_out::{ParquetOptions, ParquetOut};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods};

const SCHEMA: &std::ffi::CStr = c"arrow_schema";
const STREAM: &std::ffi::CStr = c"arrow_array_stream";

/// A Parquet file being written, row groups encoded on threads of their own
/// (`ParquetOut`); `write_table` and `close` as pyarrow's `ParquetWriter` has them.
#[pyclass(module = "callsweep._native")]
pub struct ParquetWriter {
    out: Option<ParquetOut>,
}

#[pymethods]
impl ParquetWriter {
    /// `schema`: an Arrow schema (`__arrow_c_schema__`); `dictionary`: the columns to
    /// dictionary-encode; `compressed`: those to compress with zstd (None: all).
    #[new]
    #[pyo3(signature = (path, schema, dictionary, compressed=None, threads=2))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        schema: &Bound<'_, PyAny>,
        dictionary: Vec<String>,
        compressed: Option<Vec<String>>,
        threads: usize,
    ) -> PyResult<ParquetWriter> {
        let schema = Arc::new(import_schema(schema)?);
        let options = ParquetOptions {
            dictionary,
            compressed,
        };
        let out = py
            .detach(|| ParquetOut::create(&path, schema, &options, threads))
            .map_err(write_error)?;
        Ok(ParquetWriter { out: Some(out) })
    }

    /// Writes `table` (`__arrow_c_stream__` of record batches) as row groups of
    /// `row_group_size` rows; returns once they are handed over to be encoded.
    fn write_table(
        &mut self,
        py: Python<'_>,
        table: &Bound<'_, PyAny>,
        row_group_size: usize,
    ) -> PyResult<()> {
        let batches = import_batches(table)?;
        let out = self.out.as_mut().ok_or_else(closed)?;
        py.detach(|| out.write(&batches, row_group_size))
            .map_err(write_error)
    }

    /// Appends the row groups still being encoded and writes the footer.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.out.take() {
            Some(out) => py.detach(|| out.close()).map_err(write_error),
            None => Ok(()),
        }
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("the Parquet writer is closed")
}

fn write_error(err: callsweep_core::Error) -> PyErr {
    match err {
        callsweep_core::Error::Write { .. } => PyOSError::new_err(err.to_string()),
        other => PyValueError::new_err(other.to_string()),
    }
}

fn arrow_error(err: arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(format!("invalid Arrow data: {err}"))
}

fn import_schema(obj: &Bound<'_, PyAny>) -> PyResult<Schema> {
    let capsule = obj.call_method0("__arrow_c_schema__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr: NonNull<FFI_ArrowSchema> = capsule.pointer_checked(Some(SCHEMA))?.cast();
    // SAFETY: a capsule named `arrow_schema` holds an `ArrowSchema`; it is only read here (the
    // capsule keeps it and releases it).
    Schema::try_from(unsafe { ptr.as_ref() }).map_err(arrow_error)
}

fn import_batches(obj: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr: NonNull<FFI_ArrowArrayStream> = capsule.pointer_checked(Some(STREAM))?.cast();
    // SAFETY: a capsule named `arrow_array_stream` holds a stream; `from_raw` moves it out and
    // leaves a released one behind, which the capsule's destructor then skips.
    let reader = unsafe { RecordBatchStreamReader::from_raw(ptr.as_ptr()) }.map_err(arrow_error)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(arrow_error)
}
