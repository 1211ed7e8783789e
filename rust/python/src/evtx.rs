//! EVTX files as Arrow record batch streams (`EvtxReader`), and their schema (`evtx_schema`).
//!
//! The decoding is `callsweep_core::evtx`; this only hands its batches over through the Arrow
//! PyCapsule stream interface, without copies, and never holds the GIL while decoding.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::{ArrowError, SchemaRef};
use callsweep_core::evtx::{EvtxBatches, EvtxOptions, StatsHandle};
use callsweep_core::Error;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

const SCHEMA: &CStr = c"arrow_schema";
const STREAM: &CStr = c"arrow_array_stream";

extern "C" {
    // Part of CPython's C API since 3.4 (not of the limited API that abi3 declares, so pyo3-ffi
    // leaves it out there; every CPython exports it).
    fn PyGILState_Check() -> c_int;
}

/// The Python exception for an EVTX file that cannot be opened.
pub fn open_error(err: Error) -> PyErr {
    let message = err.to_string();
    match err {
        Error::Io { kind, .. } => match kind {
            std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(message),
            std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(message),
            std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(message),
            _ => PyOSError::new_err(message),
        },
        _ => PyValueError::new_err(message),
    }
}

/// The batches of a file, as the Arrow C stream reads them: without the GIL.
struct GilFreeReader {
    batches: EvtxBatches,
    calls_with_gil: Arc<AtomicU64>,
}

impl Iterator for GilFreeReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        // pyarrow releases the GIL before it pulls a batch; a consumer that does not would
        // hold it through the decoding (and other Python threads would wait): release it here.
        // SAFETY: PyGILState_Check only reads the calling thread's state; it is safe to call
        // from any thread, with or without the GIL.
        let holds_gil = unsafe { PyGILState_Check() } == 1;
        let batch = if holds_gil {
            self.calls_with_gil.fetch_add(1, Ordering::Relaxed);
            Python::attach(|py| py.detach(|| self.batches.next()))
        } else {
            self.batches.next()
        };
        batch.map(Ok)
    }
}

impl RecordBatchReader for GilFreeReader {
    fn schema(&self) -> SchemaRef {
        self.batches.schema()
    }
}

/// An EVTX file decoded into Arrow record batches (flat ECS columns, see `evtx_schema()`),
/// read once through the Arrow C stream interface: `pyarrow.RecordBatchReader.from_stream(r)`,
/// `polars.DataFrame(r)` (`polars.from_arrow(r)` makes one struct Series of it). Damaged chunks and records are passed over and listed in `errors`
/// as `(chunk, file offset, message)`; `records`, `skipped` and `chunks` count as the stream is
/// read (final once it has ended: `finished`).
#[pyclass(frozen, module = "callsweep._native")]
pub struct EvtxReader {
    path: String,
    batches: Mutex<Option<EvtxBatches>>,
    stats: StatsHandle,
    calls_with_gil: Arc<AtomicU64>,
}

#[pymethods]
impl EvtxReader {
    /// Opens `path` (OSError when it cannot be read, ValueError when it is not EVTX), to be
    /// decoded on `threads` threads (0: one per core) into batches of about `batch_rows` rows;
    /// with `by_code_kind`, each batch holds rows of one kind of event code only (before "10"
    /// as text, "10", after it), as callsweep's Parquet layout writes them; with `layout_form`,
    /// the batches come in the layout's written schema (`evtx_layout_schema()`: dictionary
    /// columns as plain strings, the CallTrace prefix column appended).
    #[new]
    #[pyo3(signature = (path, batch_rows = 65536, threads = 0, by_code_kind = false, layout_form = false))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        batch_rows: usize,
        threads: usize,
        by_code_kind: bool,
        layout_form: bool,
    ) -> PyResult<Self> {
        if batch_rows == 0 {
            return Err(PyValueError::new_err("batch_rows must be at least 1"));
        }
        let options = EvtxOptions {
            batch_rows,
            threads,
            by_code_kind,
            layout_form,
            ..EvtxOptions::default()
        };
        let batches = py
            .detach(|| EvtxBatches::open(&path, options))
            .map_err(open_error)?;
        Ok(EvtxReader {
            path: path.to_string_lossy().into_owned(),
            stats: batches.stats_handle(),
            batches: Mutex::new(Some(batches)),
            calls_with_gil: Arc::default(),
        })
    }

    /// The record batches, as an Arrow C stream (once). A requested schema is not honoured:
    /// the batches have one schema, `evtx_schema()`.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "the record batches of {} have already been read: open it again",
                    self.path
                ))
            })?;
        let reader = GilFreeReader {
            batches,
            calls_with_gil: Arc::clone(&self.calls_with_gil),
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, STREAM)
    }

    /// The path, as given.
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Records decoded so far.
    #[getter]
    fn records(&self) -> u64 {
        self.stats.snapshot().records
    }

    /// Chunks and records passed over so far.
    #[getter]
    fn skipped(&self) -> u64 {
        self.stats.snapshot().skipped
    }

    /// Chunks read so far (damaged ones included).
    #[getter]
    fn chunks(&self) -> u64 {
        self.stats.snapshot().chunks
    }

    /// What was passed over: `(chunk, file offset, message)`.
    #[getter]
    fn errors(&self) -> Vec<(u64, u64, String)> {
        self.stats
            .snapshot()
            .errors
            .into_iter()
            .map(|e| (e.chunk, e.offset, e.message))
            .collect()
    }

    /// Whether the whole file has been read.
    #[getter]
    fn finished(&self) -> bool {
        self.stats.snapshot().finished
    }

    /// Records read straight from their template values (the others through the evtx crate's
    /// JSON rendering); for benchmarks.
    #[getter]
    fn template_records(&self) -> u64 {
        self.stats.snapshot().template_records
    }

    /// How often the stream was pulled by a thread holding the GIL (which was then released
    /// for the decoding); for checks.
    #[getter]
    fn _calls_with_gil(&self) -> u64 {
        self.calls_with_gil.load(Ordering::Relaxed)
    }

    fn __repr__(&self) -> String {
        let stats = self.stats.snapshot();
        format!(
            "EvtxReader({:?}, records={}, skipped={}, finished={})",
            self.path,
            stats.records,
            stats.skipped,
            if stats.finished { "True" } else { "False" }
        )
    }
}

/// The Arrow schema of decoded EVTX batches; `pyarrow.schema(evtx_schema())` takes it.
#[pyclass(frozen, module = "callsweep._native")]
pub struct ExportedSchema {
    schema: SchemaRef,
}

#[pymethods]
impl ExportedSchema {
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref())
            .map_err(|e| PyValueError::new_err(format!("invalid Arrow schema: {e}")))?;
        PyCapsule::new_with_value(py, schema, SCHEMA)
    }

    fn __len__(&self) -> usize {
        self.schema.fields().len()
    }

    fn __repr__(&self) -> String {
        format!("ExportedSchema({} fields)", self.schema.fields().len())
    }
}

/// The schema of every batch an `EvtxReader` yields.
#[pyfunction]
pub fn evtx_schema() -> ExportedSchema {
    ExportedSchema {
        schema: callsweep_core::evtx::evtx_schema(),
    }
}

/// The schema of the batches of an `EvtxReader` opened with `layout_form`: what callsweep's
/// Parquet layout writes.
#[pyfunction]
pub fn evtx_layout_schema() -> ExportedSchema {
    ExportedSchema {
        schema: callsweep_core::evtx::layout_schema(),
    }
}
