//! The Arrow PyCapsule interface, both ways, without copying buffers.
//!
//! Import: any object with `__arrow_c_array__` (pyarrow arrays, arro3, nanoarrow) or
//! `__arrow_c_stream__` (polars Series, pyarrow chunked arrays). Export: `ExportedArray`, which
//! offers `__arrow_c_array__`, so `pyarrow.array(x)` and `polars.Series(x)` take it as is.
//!
//! Written here rather than taken from `pyo3-arrow`: that crate also pulls in `numpy`,
//! `arrow-cast` and `chrono-tz`, a long compile on a two-core machine for the two functions
//! this crate needs.

use std::ffi::CStr;
use std::ptr::NonNull;

use arrow_array::ffi::{from_ffi, to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{make_array, Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::BooleanBufferBuilder;
use arrow_data::ArrayData;
use arrow_schema::Schema;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyTuple};

const SCHEMA: &CStr = c"arrow_schema";
const ARRAY: &CStr = c"arrow_array";
const STREAM: &CStr = c"arrow_array_stream";

fn arrow_error(err: arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(format!("invalid Arrow data: {err}"))
}

/// Reads the chunks of an Arrow array or stream handed over by another library.
pub fn import_array(obj: &Bound<'_, PyAny>) -> PyResult<Vec<ArrayRef>> {
    if obj.hasattr("__arrow_c_array__")? {
        let pair = obj.call_method0("__arrow_c_array__")?;
        let pair = pair.cast::<PyTuple>()?;
        let schema = pair.get_item(0)?;
        let array = pair.get_item(1)?;
        let schema = schema.cast::<PyCapsule>()?;
        let array = array.cast::<PyCapsule>()?;
        let schema_ptr: NonNull<FFI_ArrowSchema> = schema.pointer_checked(Some(SCHEMA))?.cast();
        let array_ptr: NonNull<FFI_ArrowArray> = array.pointer_checked(Some(ARRAY))?.cast();
        // SAFETY: the capsules are named as the interface requires, so they hold these structs.
        // `from_raw` moves the array out and leaves a released one behind, which the capsule's
        // destructor then ignores, as the interface prescribes.
        let data = unsafe {
            let ffi_array = FFI_ArrowArray::from_raw(array_ptr.as_ptr());
            from_ffi(ffi_array, schema_ptr.as_ref())
        }
        .map_err(arrow_error)?;
        return Ok(vec![make_array(data)]);
    }
    if obj.hasattr("__arrow_c_stream__")? {
        let capsule = obj.call_method0("__arrow_c_stream__")?;
        let capsule = capsule.cast::<PyCapsule>()?;
        let stream_ptr: NonNull<FFI_ArrowArrayStream> =
            capsule.pointer_checked(Some(STREAM))?.cast();
        // SAFETY: as above; the stream is moved out of the capsule and released when dropped.
        // `ArrayStreamReader`, unlike the record-batch reader, takes streams of any type: a
        // polars Series exports a stream of plain string arrays.
        let reader =
            unsafe { ArrayStreamReader::from_raw(stream_ptr.as_ptr()) }.map_err(arrow_error)?;
        return reader.collect::<Result<Vec<_>, _>>().map_err(arrow_error);
    }
    Err(PyTypeError::new_err(format!(
        "expected an Arrow array (an object with __arrow_c_array__ or __arrow_c_stream__), got {}",
        obj.get_type().name()?
    )))
}

/// The schema of an object with `__arrow_c_schema__` (a pyarrow schema).
pub fn import_schema(obj: &Bound<'_, PyAny>) -> PyResult<Schema> {
    let capsule = obj.call_method0("__arrow_c_schema__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr: NonNull<FFI_ArrowSchema> = capsule.pointer_checked(Some(SCHEMA))?.cast();
    // SAFETY: a capsule named `arrow_schema` holds an `ArrowSchema`; it is only read here (the
    // capsule keeps it and releases it).
    Schema::try_from(unsafe { ptr.as_ref() }).map_err(arrow_error)
}

/// The record batches of an object with `__arrow_c_stream__` (a pyarrow table).
pub fn import_batches(obj: &Bound<'_, PyAny>) -> PyResult<Vec<RecordBatch>> {
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let ptr: NonNull<FFI_ArrowArrayStream> = capsule.pointer_checked(Some(STREAM))?.cast();
    // SAFETY: as in `import_array`: the stream is moved out of the capsule.
    let reader = unsafe { RecordBatchStreamReader::from_raw(ptr.as_ptr()) }.map_err(arrow_error)?;
    reader.collect::<Result<Vec<_>, _>>().map_err(arrow_error)
}

/// An Arrow array owned by Rust, handed to Python through `__arrow_c_array__`.
#[pyclass(frozen, module = "callsweep._native")]
pub struct ExportedArray {
    data: ArrayData,
}

impl ExportedArray {
    pub fn new(data: ArrayData) -> ExportedArray {
        ExportedArray { data }
    }

    /// Joins the boolean results of several chunks into one array.
    pub fn concat_booleans(chunks: Vec<BooleanArray>) -> PyResult<ExportedArray> {
        // The kernel's results carry no nulls: only the value bits need joining.
        let total = chunks.iter().map(|c| c.len()).sum();
        let mut bits = BooleanBufferBuilder::new(total);
        for chunk in &chunks {
            bits.append_buffer(chunk.values());
        }
        let array = BooleanArray::new(bits.finish(), None);
        Ok(ExportedArray {
            data: array.into_data(),
        })
    }
}

#[pymethods]
impl ExportedArray {
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        // An array has one representation here; a request for another type is not honoured,
        // which the interface allows ("the producer may ignore it").
        let _ = requested_schema;
        let (array, schema) = to_ffi(&self.data).map_err(arrow_error)?;
        let schema = PyCapsule::new_with_value(py, schema, SCHEMA)?;
        let array = PyCapsule::new_with_value(py, array, ARRAY)?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    fn __len__(&self) -> usize {
        self.data.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "ExportedArray({}, len={})",
            self.data.data_type(),
            self.data.len()
        )
    }
}
