//! The first frame of a call trace, for the alerts' `callsweep.call_trace.first_frame`: the
//! part of each value before its first `|` (the whole value when it has none).
//!
//! A string view array is cut without copying a byte: the part is a prefix of the value, so a
//! long one keeps its buffer, offset and first four bytes and only gets a shorter length, and a
//! part of up to 12 bytes moves into the view itself. A rule with noisy siblings writes hundreds
//! of thousands of alerts, where a regular expression took a tenth of a second.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::ByteArrayType;
use arrow_array::{Array, ArrayRef, GenericByteArray, StringViewArray};
use arrow_buffer::ScalarBuffer;
use arrow_schema::DataType;
use memchr::memchr;

use crate::Error;

/// Each value of a string array up to its first `sep` byte, which must be ASCII (so that the
/// cut falls between characters); nulls stay null. Answers with a string view array.
pub fn before_first(array: &dyn Array, sep: u8) -> Result<ArrayRef, Error> {
    assert!(
        sep.is_ascii(),
        "a separator inside a UTF-8 character would split it"
    );
    let cut = match array.data_type() {
        DataType::Utf8View => cut_views(array.as_string_view(), sep),
        DataType::Utf8 => cut_bytes(array.as_string::<i32>(), sep),
        DataType::LargeUtf8 => cut_bytes(array.as_string::<i64>(), sep),
        DataType::Null => StringViewArray::new_null(array.len()),
        other => return Err(Error::UnsupportedType(other.to_string())),
    };
    Ok(Arc::new(cut))
}

fn cut_views(array: &StringViewArray, sep: u8) -> StringViewArray {
    let views: Vec<u128> = (0..array.len())
        .map(|i| {
            let view = array.views()[i];
            if array.is_null(i) {
                return view;
            }
            let value = array.value(i).as_bytes();
            match memchr(sep, value) {
                None => view,
                Some(end) if end <= 12 => inline_view(&value[..end]),
                // A long part: the same buffer (bits 64..96), offset (96..128) and first four
                // bytes (32..64); a new length (0..32).
                Some(end) => (view & !0xFFFF_FFFFu128) | end as u128,
            }
        })
        .collect();
    // SAFETY: every view is either an original one, an inline view of at most 12 bytes, or an
    // original long view with a shorter length (still more than 12), so each one points inside
    // the buffers it pointed into before; the parts end before an ASCII byte, so they are UTF-8.
    unsafe {
        StringViewArray::new_unchecked(
            ScalarBuffer::from(views),
            Arc::clone(array.data_buffers()),
            array.nulls().cloned(),
        )
    }
}

/// The view of a value of at most 12 bytes: its length, then the bytes, zero-padded.
pub(crate) fn inline_view(bytes: &[u8]) -> u128 {
    debug_assert!(bytes.len() <= 12);
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    raw[4..4 + bytes.len()].copy_from_slice(bytes);
    u128::from_le_bytes(raw)
}

fn cut_bytes<T>(array: &GenericByteArray<T>, sep: u8) -> StringViewArray
where
    T: ByteArrayType<Native = str>,
{
    array
        .iter()
        .map(|value| value.map(|v| v.split(sep as char).next().unwrap_or(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{LargeStringArray, StringArray};
    use proptest::prelude::*;

    fn reference(values: &[Option<String>]) -> Vec<Option<String>> {
        values
            .iter()
            .map(|v| v.as_ref().map(|v| v.split('|').next().unwrap().to_owned()))
            .collect()
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        array
            .as_string_view()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    }

    fn piece() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4",
            "UNKNOWN(00000000001)",
            "|",
            "",
            "é",
            "日本",
            "x",
            "ntdll.dll+1",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #[test]
        fn every_layout_cuts_at_the_first_bar(
            values in prop::collection::vec(
                prop::option::of(prop::collection::vec(piece(), 0..5).prop_map(|p| p.concat())),
                0..40,
            ),
        ) {
            let want = reference(&values);
            let views: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
            let plain: ArrayRef = Arc::new(StringArray::from(values.clone()));
            let large: ArrayRef = Arc::new(LargeStringArray::from(values.clone()));
            for array in [views, plain, large] {
                let cut = before_first(array.as_ref(), b'|').unwrap();
                // The result must be a valid array: validate it as a fresh one would be.
                cut.to_data().validate_full().unwrap();
                prop_assert_eq!(strings(&cut), want.clone());
            }
        }
    }

    #[test]
    fn nulls_and_other_types() {
        let null = arrow_array::NullArray::new(3);
        assert_eq!(before_first(&null, b'|').unwrap().null_count(), 3);
        let ints = arrow_array::Int32Array::from(vec![1]);
        assert!(matches!(
            before_first(&ints, b'|'),
            Err(Error::UnsupportedType(_))
        ));
    }
}
