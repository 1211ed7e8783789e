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

use crate::frames::{before_first, inline_view};
use crate::kernel::{prefetch, view_slot};
use crate::Error;

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
    compact_views_cut(array, None).0
}

/// `array` compacted as `compact` does, and each value's first frame, the part before its
/// first `sep` (`frames::before_first`), cut while the value is in cache and copied into a
/// buffer of its own: the CallTraces of a multi-rule scan's kept rows and their first frames,
/// in one pass over them.
pub fn compact_with_first_frames(array: &ArrayRef, sep: u8) -> Result<(ArrayRef, ArrayRef), Error> {
    if let DataType::Utf8View = array.data_type() {
        let (values, frames) = compact_views_cut(array.as_string_view(), Some(sep));
        let frames = frames.expect("frames are cut when a separator is given");
        return Ok((Arc::new(values), Arc::new(frames)));
    }
    let frames = before_first(array.as_ref(), sep)?;
    Ok((compact(array), compact(&frames)))
}

/// Where copied bytes go: buffers of at most `BUFFER_MAX` bytes, the last one still growing.
struct Sink {
    buffers: Vec<Buffer>,
    data: Vec<u8>,
}

impl Sink {
    fn new(capacity: usize) -> Sink {
        Sink {
            buffers: Vec::new(),
            data: Vec::with_capacity(capacity.min(BUFFER_MAX)),
        }
    }

    /// Copies `bytes` (more than 12) and returns their view, `prefix` bits (length and first
    /// four bytes) as given.
    fn push(&mut self, bytes: &[u8], prefix: u128) -> u128 {
        if self.data.len() + bytes.len() > BUFFER_MAX {
            let full = std::mem::replace(&mut self.data, Vec::with_capacity(BUFFER_MAX));
            self.buffers.push(Buffer::from_vec(full));
        }
        let offset = self.data.len();
        self.data.extend_from_slice(bytes);
        (prefix & 0xFFFF_FFFF_FFFF_FFFF)
            | ((self.buffers.len() as u128) << 64)
            | ((offset as u128) << 96)
    }

    fn finish(mut self) -> Vec<Buffer> {
        if !self.data.is_empty() {
            self.buffers.push(Buffer::from_vec(self.data));
        }
        self.buffers
    }
}

/// The view of the part of `bytes` before its first `sep`, copied into `frames` when longer
/// than a view holds.
fn cut_view(bytes: &[u8], sep: u8, frames: &mut Sink) -> u128 {
    let end = memchr::memchr(sep, bytes).unwrap_or(bytes.len());
    if end <= 12 {
        return inline_view(&bytes[..end]);
    }
    let head = u32::from_le_bytes(bytes[..4].try_into().expect("four bytes"));
    frames.push(&bytes[..end], (end as u128) | (u128::from(head) << 32))
}

fn compact_views_cut(
    array: &StringViewArray,
    cut: Option<u8>,
) -> (StringViewArray, Option<StringViewArray>) {
    let views = array.views();
    let sources = array.data_buffers();
    let nulls = array.nulls();
    let is_valid = |i: usize| nulls.is_none_or(|n| n.is_valid(i));
    let is_long = |i: usize| views[i] as u32 > 12 && is_valid(i);
    let needed: usize = (0..views.len())
        .filter(|&i| is_long(i))
        .map(|i| views[i] as u32 as usize)
        .sum();
    let mut sink = Sink::new(needed);
    let mut out: Vec<u128> = Vec::with_capacity(views.len());
    let mut frames = cut.map(|_| (Sink::new(0), Vec::<u128>::with_capacity(views.len())));
    // Values copied already, by their view: equal views hold equal bytes, so a repeated value
    // (an image path, the input's path, a rule's name) is copied once. A long view is never 0.
    let mut copied = vec![(0u128, 0u128, 0u128); 1 << COPIED_BITS];
    for i in 0..views.len() {
        let view = views[i];
        if !is_long(i) {
            // Inline, it owns its bytes already; a null's view is never read.
            let kept = if is_valid(i) { view } else { 0 };
            out.push(kept);
            if let (Some(sep), Some((sink, cuts))) = (cut, frames.as_mut()) {
                let len = kept as u32 as usize;
                let bytes = kept.to_le_bytes();
                cuts.push(if is_valid(i) {
                    cut_view(&bytes[4..4 + len], sep, sink)
                } else {
                    0
                });
            }
            continue;
        }
        let slot = view_slot(view, COPIED_BITS);
        if copied[slot].0 == view {
            out.push(copied[slot].1);
            if let Some((_, cuts)) = frames.as_mut() {
                cuts.push(copied[slot].2);
            }
            continue;
        }
        if let Some(&ahead) = views.get(i + PREFETCH_AHEAD) {
            if let Some(b) = sources.get((ahead >> 64) as u32 as usize) {
                prefetch(b.as_ptr().wrapping_add((ahead >> 96) as u32 as usize));
            }
        }
        let len = view as u32 as usize;
        let (source, start) = ((view >> 64) as u32 as usize, (view >> 96) as u32 as usize);
        let bytes = &sources[source][start..start + len];
        // Same length and first four bytes (bits 0..64); new buffer index and offset.
        let moved = sink.push(bytes, view);
        let frame = match (cut, frames.as_mut()) {
            (Some(sep), Some((frame_sink, cuts))) => {
                let frame = cut_view(bytes, sep, frame_sink);
                cuts.push(frame);
                frame
            }
            _ => 0,
        };
        copied[slot] = (view, moved, frame);
        out.push(moved);
    }
    // SAFETY: every long view now points at a copy of its own bytes, in a buffer that exists
    // (`buffers.len()` was its index when the bytes went in), within that buffer's length;
    // the bytes are those of valid UTF-8 values; inline views are unchanged, nulls empty. A
    // frame is a value's bytes up to an ASCII separator (a character boundary), held the same
    // way or inline.
    let values = unsafe {
        StringViewArray::new_unchecked(
            ScalarBuffer::from(out),
            sink.finish().into(),
            nulls.cloned(),
        )
    };
    let frames = frames.map(|(frame_sink, cuts)| unsafe {
        StringViewArray::new_unchecked(
            ScalarBuffer::from(cuts),
            frame_sink.finish().into(),
            nulls.cloned(),
        )
    });
    (values, frames)
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

        /// With their first frames: the values as `compact` gives them, the frames as
        /// `frames::before_first` cuts them, each in buffers of its own.
        #[test]
        fn first_frames_cut_in_the_copy_equal_those_cut_apart(
            values in prop::collection::vec(prop::option::of(prop::sample::select(vec![
                "", "a|b", "exactly12byt|x", "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|UNKNOWN(1)",
                "UNKNOWN(00000000000A1234)", "short|", "|lead", "日本語のパスです、十三バイト以上|x",
            ]).prop_map(str::to_owned)), 0..60),
            repeat in 0usize..4,
            cut in 0usize..60,
        ) {
            // Equal values under distinct views (as a plain-encoded column decodes).
            let mut values = values;
            for _ in 0..repeat { values.extend(values.clone().into_iter().take(5)); }
            let whole: ArrayRef = Arc::new(StringViewArray::from(values.clone()));
            let cut = cut.min(values.len());
            let part = whole.slice(cut / 2, values.len() - cut);
            let (compacted, frames) = compact_with_first_frames(&part, b'|').unwrap();
            compacted.to_data().validate_full().unwrap();
            frames.to_data().validate_full().unwrap();
            prop_assert_eq!(compacted.as_ref(), part.as_ref());
            let apart = before_first(part.as_ref(), b'|').unwrap();
            prop_assert_eq!(frames.as_ref(), apart.as_ref());
            // The frames hold no bytes of the part's buffers: only the long frames' own.
            let bytes: usize = frames.as_string_view().data_buffers().iter().map(|b| b.len()).sum();
            prop_assert!(bytes <= frames.as_string_view().iter().flatten().map(str::len).filter(|&n| n > 12).sum::<usize>());
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
            // A repeated value's first frame is the one cut from its first copy.
            let (again, frames) = compact_with_first_frames(&repeated, b'.').unwrap();
            frames.to_data().validate_full().unwrap();
            prop_assert_eq!(again.as_ref(), repeated.as_ref());
            let apart = before_first(repeated.as_ref(), b'.').unwrap();
            prop_assert_eq!(frames.as_ref(), apart.as_ref());
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
