//! String view arrays copied into buffers of their own.
//!
//! polars keeps a filtered string column as views into the buffers the whole part was decoded
//! into: a few thousand alerts would keep every CallTrace of millions of events alive. Turning
//! them into Arrow's plain strings copies their bytes, and polars copies them back into views
//! when it takes them again. Here the bytes of the values that are left are copied once, into
//! new buffers, and the result is still a view array, which polars takes as it is.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, GenericListArray, OffsetSizeTrait, StringViewArray};
use arrow_buffer::{Buffer, ScalarBuffer};
use arrow_schema::DataType;

use crate::kernel::{prefetch, view_slot};

/// A buffer's size limit: view offsets are 32-bit.
const BUFFER_MAX: usize = i32::MAX as usize;

/// `array` with its string views (at the top, or as the elements of lists) copied into new
/// buffers holding only the values it has; every other array is returned as it is.
pub fn compact(array: &ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Utf8View => Arc::new(compact_views(array.as_string_view())),
        DataType::List(_) => compact_list(array.as_list::<i32>()),
        DataType::LargeList(_) => compact_list(array.as_list::<i64>()),
        _ => Arc::clone(array),
    }
}

fn compact_list<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> ArrayRef {
    let (field, offsets, values, nulls) = list.clone().into_parts();
    // Only the elements the list's rows reach: a sliced list keeps all of its parent's.
    let (start, end) = (offsets[0].as_usize(), offsets[offsets.len() - 1].as_usize());
    let values = compact(&values.slice(start, end - start));
    let shift = offsets[0];
    let offsets: Vec<O> = offsets.iter().map(|&o| o - shift).collect();
    // SAFETY of `new`: the offsets start at 0, rise as before, and end at the sliced length.
    Arc::new(GenericListArray::new(
        field,
        arrow_buffer::OffsetBuffer::new(ScalarBuffer::from(offsets)),
        values,
        nulls,
    ))
}

fn compact_views(array: &StringViewArray) -> StringViewArray {
    let views = array.views();
    let sources = array.data_buffers();
    let nulls = array.nulls();
    let is_long = |i: usize| views[i] as u32 > 12 && nulls.is_none_or(|n| n.is_valid(i));
    let needed: usize = (0..views.len())
        .filter(|&i| is_long(i))
        .map(|i| views[i] as u32 as usize)
        .sum();
    let mut buffers: Vec<Buffer> = Vec::new();
    let mut data: Vec<u8> = Vec::with_capacity(needed.min(BUFFER_MAX));
    let mut out: Vec<u128> = Vec::with_capacity(views.len());
    // Values copied already, by their view: equal views hold equal bytes, so a repeated value
    // (an image path, the input's path, a rule's name) is copied once. A long view is never 0.
    let mut copied = vec![(0u128, 0u128); 1 << COPIED_BITS];
    for i in 0..views.len() {
        let view = views[i];
        if !is_long(i) {
            // Inline, it owns its bytes already; a null's view is never read.
            out.push(if view as u32 > 12 { 0 } else { view });
            continue;
        }
        let slot = view_slot(view, COPIED_BITS);
        if copied[slot].0 == view {
            out.push(copied[slot].1);
            continue;
        }
        if let Some(&ahead) = views.get(i + PREFETCH_AHEAD) {
            if let Some(b) = sources.get((ahead >> 64) as u32 as usize) {
                prefetch(b.as_ptr().wrapping_add((ahead >> 96) as u32 as usize));
            }
        }
        let len = view as u32 as usize;
        let (source, start) = ((view >> 64) as u32 as usize, (view >> 96) as u32 as usize);
        if data.len() + len > BUFFER_MAX {
            let full = std::mem::replace(&mut data, Vec::with_capacity(BUFFER_MAX));
            buffers.push(Buffer::from_vec(full));
        }
        let offset = data.len();
        data.extend_from_slice(&sources[source][start..start + len]);
        // Same length and first four bytes (bits 0..64); new buffer index and offset.
        let moved = (view & 0xFFFF_FFFF_FFFF_FFFF)
            | ((buffers.len() as u128) << 64)
            | ((offset as u128) << 96);
        copied[slot] = (view, moved);
        out.push(moved);
    }
    if !data.is_empty() {
        buffers.push(Buffer::from_vec(data));
    }
    // SAFETY: every long view now points at a copy of its own bytes, in a buffer that exists
    // (`buffers.len()` was its index when the bytes went in), within that buffer's length;
    // the bytes are those of valid UTF-8 values; inline views are unchanged, nulls empty.
    unsafe {
        StringViewArray::new_unchecked(ScalarBuffer::from(out), buffers.into(), nulls.cloned())
    }
}

const COPIED_BITS: u32 = 10;

/// How many values ahead a source value is prefetched: the values left after a filter are
/// scattered over the buffers of the whole part, so each would otherwise be a cache miss.
const PREFETCH_AHEAD: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringViewBuilder};
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Option<String>> {
        prop::option::of(
            prop::sample::select(vec![
                "",
                "short",
                "exactly12byt",
                "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|UNKNOWN(1)",
                "日本語のパスです、十三バイト以上",
            ])
            .prop_map(str::to_owned),
        )
    }

    proptest! {
        #[test]
        fn compacted_views_hold_the_same_values_and_only_them(
            values in prop::collection::vec(value(), 0..60),
            cut in 0usize..60,
        ) {
            let whole: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
            let cut = cut.min(values.len());
            let part = whole.slice(cut / 2, values.len() - cut);
            let compacted = compact(&part);
            compacted.to_data().validate_full().unwrap();
            prop_assert_eq!(compacted.as_ref(), part.as_ref());
            let bytes: usize = compacted.as_string_view().data_buffers().iter().map(|b| b.len()).sum();
            let long: usize = part
                .as_string_view()
                .iter()
                .flatten()
                .map(str::len)
                .filter(|&n| n > 12)
                .sum();
            prop_assert_eq!(bytes, long);
        }

        /// Rows sharing one view (a dictionary-decoded column) get one copy of its bytes.
        #[test]
        fn a_repeated_view_is_copied_once(
            picks in prop::collection::vec(0usize..5, 1..200),
        ) {
            let distinct = StringViewArray::from(vec![
                Some("C:\\Windows\\System32\\lsass.exe"),
                Some("short"),
                None,
                Some("C:\\Program Files\\x\\y.exe"),
                Some("C:\\Windows\\System32\\svchost.exe"),
            ]);
            let views: Vec<u128> = picks.iter().map(|&k| distinct.views()[k]).collect();
            let nulls: Vec<bool> = picks.iter().map(|&k| distinct.is_valid(k)).collect();
            let repeated: ArrayRef = Arc::new(
                StringViewArray::try_new(
                    views.into(),
                    distinct.data_buffers().to_vec(),
                    Some(arrow_buffer::NullBuffer::from(nulls)),
                )
                .unwrap(),
            );
            let compacted = compact(&repeated);
            compacted.to_data().validate_full().unwrap();
            prop_assert_eq!(compacted.as_ref(), repeated.as_ref());
            let bytes: usize = compacted.as_string_view().data_buffers().iter().map(|b| b.len()).sum();
            let once: usize = [0usize, 3, 4]
                .iter()
                .filter(|k| picks.contains(k))
                .map(|&k| distinct.value(k).len())
                .sum();
            prop_assert_eq!(bytes, once);
        }

        #[test]
        fn lists_of_views_are_compacted_too(
            rows in prop::collection::vec(prop::option::of(prop::collection::vec(value(), 0..4)), 1..20),
            skip in 0usize..20,
        ) {
            let mut builder = ListBuilder::new(StringViewBuilder::new());
            for row in &rows {
                match row {
                    Some(items) => builder.append_value(items.iter().map(|s| s.as_deref())),
                    None => builder.append_null(),
                }
            }
            let whole: ArrayRef = Arc::new(builder.finish());
            let skip = skip.min(rows.len() - 1);
            let part = whole.slice(skip, rows.len() - skip);
            let compacted = compact(&part);
            compacted.to_data().validate_full().unwrap();
            prop_assert_eq!(compacted.as_ref(), part.as_ref());
        }
    }
}
