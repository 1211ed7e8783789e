//! `ParquetWriter`: `callsweep_core::parquet_out` for the layout writer, taking pyarrow tables.

use std::path::PathBuf;
use std::sync::Arc;

use callsweep_core::parquet_out::{ParquetOptions, ParquetOut};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrow_ffi::{import_batches, import_schema};
use crate::core_error;

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
            .map_err(core_error)?;
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
            .map_err(core_error)
    }

    /// Appends the row groups still being encoded and writes the footer.
    fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.out.take() {
            Some(out) => py.detach(|| out.close()).map_err(core_error),
            None => Ok(()),
        }
    }
}

fn closed() -> PyErr {
    PyValueError::new_err("the Parquet writer is closed")
}
