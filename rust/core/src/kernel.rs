//! Wildcard matching over whole Arrow arrays.
//!
//! The result is a boolean array of the same length with no nulls: a null (missing) value does
//! not match, as in Elasticsearch, where `f : "p"` on a document without `f` is false. A list
//! value (a multi-valued field) matches when any of its elements matches.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{ByteArrayType, ByteViewType, StringViewType};
use arrow_array::{
    Array, ArrayRef, BooleanArray, GenericByteArray, GenericByteViewArray, OffsetSizeTrait,
};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, BooleanBufferBuilder, Buffer, NullBuffer};
use arrow_schema::DataType;

use crate::glob::PatternSet;
use crate::heads::{HeadMemo, HEAD_BYTES};
use crate::Error;

/// Below this many rows one thread does the work: spawning costs more than it saves.
const PARALLEL_MIN_ROWS: usize = 1 << 16;

/// Matches every value of `array` against `set`.
///
/// Accepts `string`, `large_string`, `string_view`, dictionaries of those (each distinct value
/// is matched once), lists of any of them, and the null type.
pub fn match_array(array: &dyn Array, set: &PatternSet) -> Result<BooleanArray, Error> {
    Ok(BooleanArray::new(match_rows(array, set, None)?, None))
}

/// A convenience for callers holding an `ArrayRef`.
pub fn match_array_ref(array: &ArrayRef, set: &PatternSet) -> Result<ArrayRef, Error> {
    Ok(Arc::new(match_array(array.as_ref(), set)?))
}

/// Matches the rows of `array` selected by `rows` (all rows when None); unselected rows are
/// false and their values are never looked at, which is what makes `a and b` cheap when `a`
/// leaves few rows.
pub fn match_rows(
    array: &dyn Array,
    set: &PatternSet,
    rows: Option<&BooleanBuffer>,
) -> Result<BooleanBuffer, Error> {
    let matched = match array.data_type() {
        DataType::Utf8 => match_bytes(array.as_string::<i32>(), set, rows),
        DataType::LargeUtf8 => match_bytes(array.as_string::<i64>(), set, rows),
        DataType::Utf8View => match_views(array.as_string_view(), set, rows),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            if dict.values().is_empty() {
                // No values: every key is null (and `normalized_keys` would panic).
                return Ok(BooleanBuffer::new_unset(array.len()));
            }
            let distinct = match_rows(dict.values().as_ref(), set, None)?;
            let keys = dict.normalized_keys();
            let key_nulls = dict.keys().logical_nulls();
            collect(keys.len(), rows, |i| {
                key_nulls.as_ref().is_none_or(|n| n.is_valid(i)) && distinct.value(keys[i])
            })
        }
        DataType::List(_) => match_lists(array.as_list::<i32>(), set, rows)?,
        DataType::LargeList(_) => match_lists(array.as_list::<i64>(), set, rows)?,
        DataType::Null => BooleanBuffer::new_unset(array.len()),
        other => return Err(Error::UnsupportedType(other.to_string())),
    };
    Ok(matched)
}

/// How many values ahead the start of a value is prefetched. Patterns mostly look at the first
/// bytes of each value only, and values are long (CallTraces run to kilobytes), so every value
/// would otherwise cost a cache miss the hardware prefetcher cannot foresee.
const PREFETCH_AHEAD: usize = 16;

fn match_bytes<T>(
    array: &GenericByteArray<T>,
    set: &PatternSet,
    rows: Option<&BooleanBuffer>,
) -> BooleanBuffer
where
    T: ByteArrayType<Native = str>,
{
    let nulls = array.nulls();
    let offsets = array.value_offsets();
    let data = array.value_data();
    let len = array.len();
    collect_with(
        len,
        rows,
        || HeadMemo::new(len, 1),
        |heads, i| {
            if i + PREFETCH_AHEAD < len {
                // The offset stays inside the value buffer (offsets of a valid array are in bounds).
                prefetch(
                    data.as_ptr()
                        .wrapping_add(offsets[i + PREFETCH_AHEAD].as_usize()),
                );
            }
            is_valid(nulls, i) && matches_with_heads(set, array.value(i), heads)
        },
    )
}

/// `set.is_match(value)`, answered from `heads` when the value's first bytes decide it.
#[inline]
fn matches_with_heads(set: &PatternSet, value: &str, heads: &mut HeadMemo) -> bool {
    if value.len() > HEAD_BYTES {
        let (decided, answer) = heads.decided(value.as_bytes(), |head| {
            set.decided_by_head(head)
                .map_or((0, 0), |answer| (1, u64::from(answer)))
        });
        if decided != 0 {
            return answer != 0;
        }
    }
    set.is_match(value)
}

fn match_views(
    array: &GenericByteViewArray<StringViewType>,
    set: &PatternSet,
    rows: Option<&BooleanBuffer>,
) -> BooleanBuffer
where
    StringViewType: ByteViewType<Native = str>,
{
    let nulls = array.nulls();
    let views = array.views();
    let buffers = array.data_buffers();
    let len = array.len();
    let init = || (ViewMemo::new(), HeadMemo::new(len, 1));
    collect_with(len, rows, init, |(memo, heads), i| {
        if i + PREFETCH_AHEAD < len {
            let view = views[i + PREFETCH_AHEAD];
            // Values of up to 12 bytes live in the view itself; longer ones in a data buffer,
            // named by index (bits 64..96) at an offset (bits 96..128).
            if (view as u32) > 12 {
                let buffer = ((view >> 64) as u32) as usize;
                let offset = (view >> 96) as u32 as usize;
                if let Some(b) = buffers.get(buffer) {
                    prefetch_start(b.as_ptr().wrapping_add(offset), view as u32 as usize);
                }
            }
        }
        if !is_valid(nulls, i) {
            return false;
        }
        let view = views[i];
        if let Some(answer) = memo.get(view) {
            return answer;
        }
        // A longer value keeps its first four bytes in the view (bits 32..64): when they rule
        // every pattern out, the value itself is never read.
        let answer =
            if (view as u32) > 12 && !set.may_start_with(&((view >> 32) as u32).to_le_bytes()) {
                false
            } else {
                // SAFETY: `i < array.len()`, as `collect` only calls with indices below the length.
                matches_with_heads(set, unsafe { array.value_unchecked(i) }, heads)
            };
        memo.put(view, answer);
        answer
    })
}

/// The most pattern sets `match_rows_many` decides in one pass (one bit each, and one to say
/// an answer is stored).
pub const MANY_MAX: usize = 63;

/// Matches the rows of `array` selected by `rows` against each of `sets`, as `match_rows` does
/// for each alone, reading each value once for all of them: on a column of nearly distinct
/// long values (CallTraces), where every value read is a cache miss, the ntdll exclusions, a
/// prefix and a contains search of several rules then cost one miss per row, not one each.
pub fn match_rows_many(
    array: &dyn Array,
    sets: &[&PatternSet],
    rows: &BooleanBuffer,
) -> Result<Vec<BooleanBuffer>, Error> {
    debug_assert_eq!(rows.len(), array.len());
    if !matches!(array.data_type(), DataType::Utf8View) || sets.len() > MANY_MAX {
        return sets
            .iter()
            .map(|set| match_rows(array, set, Some(rows)))
            .collect();
    }
    let array = array.as_string_view();
    let nulls = array.nulls();
    let views = array.views();
    let buffers = array.data_buffers();
    let len = array.len();
    let all = u64::MAX >> (64 - sets.len().max(1));
    let order = Implications::of(sets);
    // Every set's answer on row `i`, one bit each (0 on rows not selected).
    let answer = |memo: &mut ManyMemo, i: usize| -> u64 {
        if !is_valid(nulls, i) {
            return 0;
        }
        let view = views[i];
        if let Some(bits) = memo.get(view) {
            return bits;
        }
        if !memo.on {
            let ahead = i + PREFETCH_AHEAD;
            if ahead < len && rows.value(ahead) {
                let next = views[ahead];
                if (next as u32) > 12 {
                    if let Some(b) = buffers.get(((next >> 64) as u32) as usize) {
                        let start = b.as_ptr().wrapping_add((next >> 96) as u32 as usize);
                        prefetch_start(start, next as u32 as usize);
                    }
                }
            }
        }
        // As in `match_views`: a long value whose first four bytes rule a set out is not read
        // for it. Which sets they leave is asked once per distinct four bytes (a CallTrace
        // column has a few dozen: `C:\W`, `UNKN`, ...).
        let candidates = if (view as u32) > 12 {
            memo.may_start(((view >> 32) as u32).to_le_bytes(), sets)
        } else {
            all
        };
        // SAFETY: `i < array.len()`: callers pass indices below the length.
        let value = unsafe { array.value_unchecked(i) };
        // The sets the value's first bytes decide (most anchored ones), answered from them.
        let (decided, mut bits) = if value.len() > HEAD_BYTES {
            memo.decided.decided(value.as_bytes(), |head| {
                let (mut decided, mut answers) = (0u64, 0u64);
                let mut open = candidates;
                while open != 0 {
                    let j = open.trailing_zeros() as usize;
                    if let Some(answer) = sets[j].decided_by_head(head) {
                        decided |= 1 << j;
                        answers |= u64::from(answer) << j;
                    }
                    open &= open - 1;
                }
                (decided, answers)
            })
        } else {
            (0, 0)
        };
        let todo = candidates & !decided;
        // The sets that imply no other first, then the others in order, each skipped where a
        // set it implies was found false (`Implications`).
        let mut free = todo & !order.dependent;
        while free != 0 {
            let j = free.trailing_zeros() as usize;
            if sets[j].is_match(value) {
                bits |= 1 << j;
            }
            free &= free - 1;
        }
        if todo & order.dependent != 0 {
            // Sets not to do are known (false, or decided by the head), as are the free ones.
            let mut known = !todo | !order.dependent;
            for &(j, requires) in &order.steps {
                if todo & (1 << j) != 0 && requires & known & !bits == 0 && sets[j].is_match(value)
                {
                    bits |= 1 << j;
                }
                known |= 1 << j;
            }
        }
        memo.put(view, bits);
        bits
    };
    // The sets' bitmaps interleaved, word by word (word `w` of set `j` at `w * k + j`), so that
    // each thread fills whole words of every set; a few bitmaps' worth of memory, not a word
    // per row (each call would otherwise fault in megabytes).
    let k = sets.len();
    let n_words = len.div_ceil(64);
    let mut words = vec![0u64; n_words * k];
    let fill = |first_word: usize, out: &mut [u64]| {
        let mut memo = ManyMemo::new(len, sets.len());
        for (w, word) in out.chunks_mut(k).enumerate() {
            let base = (first_word + w) * 64;
            // The selected rows of this word, one bit each, visited by their set bits.
            let n = 64.min(len - base);
            let mut selected = rows
                .inner()
                .bit_chunks(rows.offset() + base, n)
                .iter_padded()
                .next()
                .unwrap_or(0);
            while selected != 0 {
                let bit = selected.trailing_zeros();
                selected &= selected - 1;
                let mut bits = answer(&mut memo, base + bit as usize);
                while bits != 0 {
                    word[bits.trailing_zeros() as usize] |= 1 << bit;
                    bits &= bits - 1;
                }
            }
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if rows.count_set_bits() < len / SPARSE_DIVISOR {
        let mut memo = ManyMemo::new(len, sets.len());
        for i in rows.set_indices() {
            let mut bits = answer(&mut memo, i);
            while bits != 0 {
                words[i / 64 * k + bits.trailing_zeros() as usize] |= 1 << (i % 64);
                bits &= bits - 1;
            }
        }
    } else if len < PARALLEL_MIN_ROWS || threads < 2 {
        fill(0, &mut words);
    } else {
        let words_per_thread = n_words.div_ceil(threads);
        std::thread::scope(|scope| {
            for (n, chunk) in words.chunks_mut(words_per_thread * k).enumerate() {
                let fill = &fill;
                scope.spawn(move || fill(n * words_per_thread, chunk));
            }
        });
    }
    Ok((0..k)
        .map(|j| {
            let bitmap: Vec<u64> = (0..n_words).map(|w| words[w * k + j]).collect();
            BooleanBuffer::new(Buffer::from_vec(bitmap), 0, len)
        })
        .collect())
}

/// The order `match_rows_many` matches its sets in when some imply others
/// (`PatternSet::implies`): first the sets that imply none of the others, then, in `steps`,
/// each `dependent` set after the sets it implies, with the bits of those, so that it is
/// skipped on a value one of them rejected. Of two equivalent sets, the later one waits for
/// the first.
struct Implications {
    dependent: u64,
    steps: Vec<(usize, u64)>,
}

impl Implications {
    fn of(sets: &[&PatternSet]) -> Implications {
        let k = sets.len();
        let mut requires = vec![0u64; k];
        for (j, set) in sets.iter().enumerate() {
            for (i, other) in sets.iter().enumerate() {
                if i != j && set.implies(other) && !(i > j && other.implies(set)) {
                    requires[j] |= 1 << i;
                }
            }
        }
        let dependent = (0..k)
            .filter(|&j| requires[j] != 0)
            .fold(0u64, |bits, j| bits | 1 << j);
        // Sets whose requirements are placed go next (Kahn's order); were the requirements
        // circular (the test is only sufficient), the rest follow in index order, each still
        // skipped only for a requirement already matched.
        let mut placed = !dependent;
        let mut steps = Vec::new();
        while placed & dependent != dependent {
            let open = |j: &usize| placed & (1 << j) == 0;
            let ready = (0..k).filter(open).find(|&j| requires[j] & !placed == 0);
            let j = ready.unwrap_or_else(|| (0..k).find(open).expect("an unplaced set"));
            placed |= 1 << j;
            steps.push((j, requires[j]));
        }
        Implications { dependent, steps }
    }
}

/// `ViewMemo` for `match_rows_many`: every set's answer for a view seen before; and per first
/// four bytes of a long value, the sets that may match it.
struct ManyMemo {
    slots: Box<[(u128, u64)]>,
    lookups: u32,
    hits: u32,
    on: bool,
    heads: Box<[(u32, u64)]>,
    /// What long values' first `HEAD_BYTES` decide.
    decided: HeadMemo,
}

const HEAD_BITS: u32 = 8;

/// The bit of a stored answer that says it is one (sets use bits `0..MANY_MAX`).
const STORED: u64 = 1 << MANY_MAX;

impl ManyMemo {
    fn new(rows: usize, sets: usize) -> ManyMemo {
        ManyMemo {
            slots: vec![(0u128, 0u64); 1 << MEMO_BITS].into_boxed_slice(),
            lookups: 0,
            hits: 0,
            on: true,
            heads: vec![(0u32, 0u64); 1 << HEAD_BITS].into_boxed_slice(),
            decided: HeadMemo::new(rows, sets),
        }
    }

    /// The sets that a value longer than four bytes, starting with `head`, may match.
    #[inline]
    fn may_start(&mut self, head: [u8; 4], sets: &[&PatternSet]) -> u64 {
        let key = u32::from_le_bytes(head);
        let slot = (key.wrapping_mul(0x9E37_79B9) >> (32 - HEAD_BITS)) as usize;
        let (known, bits) = self.heads[slot];
        if bits & STORED != 0 && known == key {
            return bits & !STORED;
        }
        let mut bits = 0u64;
        for (j, set) in sets.iter().enumerate() {
            if set.may_start_with(&head) {
                bits |= 1 << j;
            }
        }
        self.heads[slot] = (key, bits | STORED);
        bits
    }

    #[inline]
    fn get(&mut self, view: u128) -> Option<u64> {
        if !self.on {
            return None;
        }
        let (key, bits) = self.slots[view_slot(view, MEMO_BITS)];
        let hit = bits & STORED != 0 && key == view;
        if memo_window_ends(&mut self.lookups, &mut self.hits, hit) {
            self.on = false;
        }
        hit.then_some(bits & !STORED)
    }

    #[inline]
    fn put(&mut self, view: u128, bits: u64) {
        if self.on {
            self.slots[view_slot(view, MEMO_BITS)] = (view, bits | STORED);
        }
    }
}

/// Answers already given for string views seen before, one table per thread.
///
/// Two equal views of one array hold equal strings: the same inline bytes, or the same length,
/// buffer and offset. polars decodes a dictionary-encoded Parquet column (image paths, access
/// masks: a few dozen distinct values) into views that all point at the dictionary's copy of
/// each value, so there each distinct value is matched about once, as for an Arrow dictionary.
/// On nearly distinct values (CallTraces) the table stops being consulted (`MEMO_TRIAL`).
struct ViewMemo {
    slots: Box<[(u128, u8)]>,
    lookups: u32,
    hits: u32,
    on: bool,
}

const MEMO_BITS: u32 = 9;

/// Where a string view goes in a direct-mapped table of `2^bits` slots: both halves of the view
/// mixed (length and prefix, buffer and offset), then Fibonacci hashing.
#[inline]
pub(crate) fn view_slot(view: u128, bits: u32) -> usize {
    let mixed = (view as u64) ^ ((view >> 64) as u64).rotate_left(29);
    (mixed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}
/// Lookups after which a table with fewer than a quarter hits among them is switched off, for
/// the rest of the call; one that has more is tried again over as many. A Parquet column
/// chunk's first pages can be dictionary-encoded (repeats, hits) and the rest plain (distinct
/// views): the table then goes off where the plain pages start.
const MEMO_TRIAL: u32 = 4096;

/// Counts a lookup (a hit or not); true when a window of `MEMO_TRIAL` lookups ends with fewer
/// than a quarter hits, the table to be switched off.
#[inline]
pub(crate) fn memo_window_ends(lookups: &mut u32, hits: &mut u32, hit: bool) -> bool {
    *lookups += 1;
    *hits += u32::from(hit);
    if *lookups < MEMO_TRIAL {
        return false;
    }
    let off = *hits < MEMO_TRIAL / 4;
    (*lookups, *hits) = (0, 0);
    off
}

impl ViewMemo {
    fn new() -> ViewMemo {
        ViewMemo {
            slots: vec![(0u128, 0u8); 1 << MEMO_BITS].into_boxed_slice(),
            lookups: 0,
            hits: 0,
            on: true,
        }
    }

    #[inline]
    fn slot(view: u128) -> usize {
        view_slot(view, MEMO_BITS)
    }

    /// The answer stored for `view`, if any (slot tag 1: false, 2: true).
    #[inline]
    fn get(&mut self, view: u128) -> Option<bool> {
        if !self.on {
            return None;
        }
        let (key, tag) = self.slots[Self::slot(view)];
        let hit = tag != 0 && key == view;
        if memo_window_ends(&mut self.lookups, &mut self.hits, hit) {
            self.on = false;
        }
        hit.then_some(tag == 2)
    }

    #[inline]
    fn put(&mut self, view: u128, answer: bool) {
        if self.on {
            self.slots[Self::slot(view)] = (view, 1 + answer as u8);
        }
    }
}

/// How many first bytes of a value its start is: what anchored patterns read (the ntdll
/// exclusions: 30), which straddle two cache lines for about half the values.
const START_BYTES: usize = 48;

/// A hint to load the first `START_BYTES` of a value of `len` bytes at `ptr` (one cache line or
/// two).
#[inline(always)]
pub(crate) fn prefetch_start(ptr: *const u8, len: usize) {
    prefetch(ptr);
    if len > 1 {
        prefetch(ptr.wrapping_add(START_BYTES.min(len) - 1));
    }
}

/// A hint to load the cache line at `ptr`; never faults, whatever the address.
#[inline(always)]
pub(crate) fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint; it does not dereference the pointer.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

fn match_lists<O: OffsetSizeTrait>(
    array: &arrow_array::GenericListArray<O>,
    set: &PatternSet,
    rows: Option<&BooleanBuffer>,
) -> Result<BooleanBuffer, Error> {
    let elements = match_rows(array.values().as_ref(), set, None)?;
    let offsets = array.value_offsets();
    let nulls = array.nulls();
    Ok(collect(array.len(), rows, |i| {
        let (start, end) = (offsets[i].as_usize(), offsets[i + 1].as_usize());
        is_valid(nulls, i) && (start..end).any(|j| elements.value(j))
    }))
}

#[inline]
fn is_valid(nulls: Option<&NullBuffer>, i: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(i))
}

/// Packs `f(i)` for the selected rows (all when `rows` is None) into a bitmap; unselected rows
/// are false and `f` is not called for them.
fn collect(
    len: usize,
    rows: Option<&BooleanBuffer>,
    f: impl Fn(usize) -> bool + Sync,
) -> BooleanBuffer {
    collect_with(len, rows, || (), |_, i| f(i))
}

/// `collect`, where `f` also gets a state of its own thread, made by `init` (a cache).
fn collect_with<S>(
    len: usize,
    rows: Option<&BooleanBuffer>,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> bool + Sync,
) -> BooleanBuffer {
    let Some(rows) = rows else {
        return collect_all(len, init, f);
    };
    debug_assert_eq!(rows.len(), len);
    if rows.count_set_bits() < len / SPARSE_DIVISOR {
        // Few rows selected: visit just those.
        let mut state = init();
        let mut bits = BooleanBufferBuilder::new(len);
        bits.append_n(len, false);
        for i in rows.set_indices() {
            if f(&mut state, i) {
                bits.set_bit(i, true);
            }
        }
        return bits.finish();
    }
    collect_all(len, init, |state, i| rows.value(i) && f(state, i))
}

/// Below one selected row in this many, a mask is walked by its set bits rather than row by row.
const SPARSE_DIVISOR: usize = 16;

/// Packs `f(0..len)` into a bitmap, on several threads for long arrays. Each thread fills whole
/// 64-bit words, so no two threads touch the same word.
fn collect_all<S>(
    len: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize) -> bool + Sync,
) -> BooleanBuffer {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if len < PARALLEL_MIN_ROWS || threads < 2 {
        let mut state = init();
        return BooleanBuffer::collect_bool(len, |i| f(&mut state, i));
    }
    let n_words = len.div_ceil(64);
    let mut words = vec![0u64; n_words];
    let words_per_thread = n_words.div_ceil(threads);
    std::thread::scope(|scope| {
        for (chunk_no, chunk) in words.chunks_mut(words_per_thread).enumerate() {
            let (init, f) = (&init, &f);
            scope.spawn(move || {
                let mut state = init();
                let first_word = chunk_no * words_per_thread;
                for (w, word) in chunk.iter_mut().enumerate() {
                    let base = (first_word + w) * 64;
                    let end = (base + 64).min(len);
                    let mut bits = 0u64;
                    for (bit, i) in (base..end).enumerate() {
                        bits |= (f(&mut state, i) as u64) << bit;
                    }
                    *word = bits;
                }
            });
        }
    });
    BooleanBuffer::new(Buffer::from_vec(words), 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::{DictionaryArray, LargeStringArray, StringArray, StringViewArray};

    fn set() -> PatternSet {
        PatternSet::new(&["?:\\windows\\system32\\ntdll.dll*", "*win32u.dll*"])
    }

    /// A window's verdict counts every lookup, the last one too (a hit there used to leave the
    /// table on for good), and each window is judged on its own lookups.
    #[test]
    fn memo_windows_are_judged_one_by_one() {
        let (mut lookups, mut hits) = (0, 0);
        let mut ends = |hit| memo_window_ends(&mut lookups, &mut hits, hit);
        // A window of hits first (a dictionary-encoded page), ending on a hit: stays on.
        assert!(!(0..MEMO_TRIAL).any(|_| ends(true)));
        // Then a window with too few hits, its last lookup a hit: off.
        let quarter = MEMO_TRIAL / 4;
        let off: Vec<bool> = (0..MEMO_TRIAL)
            .map(|i| ends(i > MEMO_TRIAL - quarter))
            .collect();
        assert_eq!(off.iter().filter(|&&o| o).count(), 1);
        assert!(off[MEMO_TRIAL as usize - 1]);
        // Exactly a quarter: on.
        assert!(!(0..MEMO_TRIAL).any(|i| ends(i < quarter)));
    }

    fn bools(a: &BooleanArray) -> Vec<bool> {
        assert_eq!(a.null_count(), 0);
        a.iter().map(|v| v.unwrap()).collect()
    }

    const VALUES: [Option<&str>; 5] = [
        Some("C:\\Windows\\System32\\ntdll.dll+1|x"),
        Some("UNKNOWN(00001)"),
        None,
        Some(""),
        Some("x|C:\\Windows\\System32\\win32u.dll+3"),
    ];
    const EXPECTED: [bool; 5] = [true, false, false, false, true];

    proptest::proptest! {
        /// One pass for several sets gives what each set alone gives, on every layout, for
        /// any selection of rows (long views, inline ones, nulls, repeats).
        #[test]
        fn many_sets_in_one_pass_give_each_sets_answer(
            values in proptest::collection::vec(
                proptest::option::of(proptest::sample::select(vec![
                    "C:\\Windows\\System32\\ntdll.dll+1|UNKNOWN(2)",
                    "c:\\windows\\system32\\ntdll.dll+9",
                    "UNKNOWN(00001)|x",
                    "unknown(",
                    "short",
                    "",
                    "C:\\Windows\\system32\\lsass.exe",
                ])),
                0..200,
            ),
            selected in proptest::collection::vec(proptest::bool::ANY, 200),
            picks in proptest::sample::subsequence(
                vec![
                    "?:\\windows\\system32\\ntdll.dll*", "*unknown(*", "UNKNOWN(*",
                    "*lsass.exe", "short", "*", "?*", "c:\\*\\ntdll.dll+?",
                ],
                0..8,
            ),
        ) {
            let sets: Vec<PatternSet> = picks.iter().map(|p| PatternSet::new(&[*p])).collect();
            let mut sets_and_like = sets.clone();
            sets_and_like.push(PatternSet::with_case(&["*UNKNOWN(*"], true));
            sets_and_like.push(PatternSet::literals(&["short", "unknown("]));
            let refs: Vec<&PatternSet> = sets_and_like.iter().collect();
            // A slice of a longer mask, as the programs' bitwise operations may hand one on.
            let rows = BooleanBuffer::from_iter((0..values.len() + 3).map(|i| i >= 3 && selected[i - 3]))
                .slice(3, values.len());
            let views = StringViewArray::from(values.clone());
            let plain = StringArray::from(values.clone());
            for array in [&views as &dyn Array, &plain] {
                let many = match_rows_many(array, &refs, &rows).unwrap();
                for (set, got) in refs.iter().zip(&many) {
                    let alone = match_rows(array, set, Some(&rows)).unwrap();
                    proptest::prop_assert_eq!(got, &alone);
                }
            }
        }
    }

    /// First bytes of CallTraces and other paths: some exactly `HEAD_BYTES` long, some cut
    /// inside a pattern's literal, one cut inside a three-byte character at byte 32, one with a
    /// two-byte character where a `?` goes.
    const HEADS: [&str; 10] = [
        "C:\\Windows\\SYSTEM32\\ntdll.dll+9d",
        "C:\\Windows\\System32\\wow64cpu.dll",
        "C:\\Windows\\System32\\wow64win.dl",
        "é:\\Windows\\System32\\wow64cpu.dll",
        "C:\\Windows\\System32\\KERNELBASE.dll+",
        "UNKNOWN(00000000000000000000001)",
        "C:\\Program Files\\app\\ab日本語\\x.dll",
        "c:\\windows\\system32\\ntdll.dll",
        "C:\\ProgramData\\Symantec\\Symantec Endpoint Protection\\14\\sysfer.dll",
        "C:\\Windows\\System32\\sysfer.dll+1",
    ];
    const TAILS: [&str; 8] = [
        "",
        "+9d4c4|UNKNOWN(00000001)",
        "|C:\\Windows\\System32\\KERNELBASE.dll+2c13e",
        "x",
        "ll+1",
        "l",
        "é",
        "😀|unknown(1)",
    ];

    /// Sets of every strategy, anchored ones that a head decides and others it does not.
    fn head_sets() -> Vec<PatternSet> {
        vec![
            PatternSet::new(&[
                "?:\\WINDOWS\\SYSTEM32\\ntdll.dll*",
                "?:\\WINDOWS\\SysWOW64\\ntdll.dll*",
                "?:\\Windows\\System32\\wow64cpu.dll*",
                "?:\\WINDOWS\\System32\\wow64win.dll*",
                "?:\\Windows\\System32\\win32u.dll*",
            ]),
            PatternSet::new(&[
                "?:\\Windows\\System32\\sysfer.dll*",
                "?:\\ProgramData\\Symantec\\Symantec Endpoint Protection\\*\\sysfer.dll*",
            ]),
            PatternSet::new(&["*unknown(*"]),
            PatternSet::new(&["UNKNOWN(*"]),
            PatternSet::new(&["c:\\windows\\system32\\ntdll.dll*"]),
            PatternSet::with_case(&["*UNKNOWN(*"], true),
            PatternSet::with_case(&["C:\\Windows\\System32\\wow64cpu.dll*"], true),
            PatternSet::literals(&[
                "C:\\Windows\\System32\\wow64cpu.dll",
                "c:\\windows\\system32\\ntdll.dll",
            ]),
            PatternSet::new(&["?:\\windows\\system32\\wow64cpu.dll"]),
            PatternSet::new(&["?:\\Program Files\\*\\*.dll", "*.dll"]),
            PatternSet::new(&[
                "C:\\Program Files\\app\\ab日本語*",
                "?:\\Program Files\\app\\ab日?*",
            ]),
            PatternSet::new(&["*"]),
        ]
    }

    proptest::proptest! {
        /// Long values answered from what their first bytes decide (`heads`): shared heads
        /// with tails that differ, in either case; each answer is the set's own on the value.
        #[test]
        fn what_heads_decide_is_each_values_answer(
            parts in proptest::collection::vec(
                (0..HEADS.len(), 0..TAILS.len(), proptest::bool::weighted(0.2)),
                0..400,
            ),
        ) {
            let values: Vec<String> = parts
                .iter()
                .map(|&(h, t, upper)| {
                    let value = format!("{}{}", HEADS[h], TAILS[t]);
                    if upper { value.to_uppercase() } else { value }
                })
                .collect();
            let sets = head_sets();
            let refs: Vec<&PatternSet> = sets.iter().collect();
            let views = StringViewArray::from_iter_values(values.iter());
            let plain = StringArray::from_iter_values(values.iter());
            let all = BooleanBuffer::new_set(values.len());
            for array in [&views as &dyn Array, &plain] {
                let many = match_rows_many(array, &refs, &all).unwrap();
                for (set, got) in sets.iter().zip(&many) {
                    let want: Vec<bool> = values.iter().map(|v| set.is_match(v)).collect();
                    proptest::prop_assert_eq!(got.iter().collect::<Vec<_>>(), want.clone());
                    proptest::prop_assert_eq!(bools(&match_array(array, set).unwrap()), want);
                }
            }
        }
    }

    #[test]
    fn what_heads_decide_over_a_long_column() {
        // Past `PARALLEL_MIN_ROWS` (one table per thread, the largest tables): every head with
        // every tail, over and over, and heads that differ in their 32nd byte.
        let values: Vec<String> = (0..PARALLEL_MIN_ROWS + 5000)
            .map(|i| match i % 5 {
                4 => format!("C:\\Windows\\SYSTEM32\\ntdll.dll+{:x}|x", i % 4096),
                _ => format!(
                    "{}{}",
                    HEADS[i % HEADS.len()],
                    TAILS[i / HEADS.len() % TAILS.len()]
                ),
            })
            .collect();
        let sets = head_sets();
        let refs: Vec<&PatternSet> = sets.iter().collect();
        let array = StringViewArray::from_iter_values(values.iter());
        let many = match_rows_many(&array, &refs, &BooleanBuffer::new_set(values.len())).unwrap();
        for (set, got) in sets.iter().zip(&many) {
            let want: Vec<bool> = values.iter().map(|v| set.is_match(v)).collect();
            assert_eq!(got.iter().collect::<Vec<_>>(), want);
            assert_eq!(bools(&match_array(&array, set).unwrap()), want);
        }
    }

    #[test]
    fn many_sets_over_a_long_column_use_threads_and_the_memo() {
        // Past `PARALLEL_MIN_ROWS`, repeated views (the memo on) and distinct ones (off).
        let n = PARALLEL_MIN_ROWS + 1000;
        let repeated: StringViewArray = (0..n)
            .map(|i| Some(["C:\\Windows\\system32\\lsass.exe", "UNKNOWN(00001)|x"][i % 2]))
            .collect();
        let distinct: StringViewArray = (0..n)
            .map(|i| {
                Some(format!(
                    "C:\\Windows\\System32\\ntdll.dll+{i}|UNKNOWN({})",
                    i % 7
                ))
            })
            .collect();
        let sets = [
            PatternSet::new(&["?:\\windows\\system32\\ntdll.dll*"]),
            PatternSet::new(&["*unknown(3)*"]),
            PatternSet::new(&["*lsass.exe"]),
        ];
        let refs: Vec<&PatternSet> = sets.iter().collect();
        let rows = BooleanBuffer::from_iter((0..n).map(|i| i % 3 != 0));
        for array in [&repeated, &distinct] {
            let many = match_rows_many(array, &refs, &rows).unwrap();
            for (set, got) in refs.iter().zip(&many) {
                assert_eq!(got, &match_rows(array, set, Some(&rows)).unwrap());
            }
        }
    }

    #[test]
    fn every_string_layout_gives_the_same_answer() {
        let s = StringArray::from(VALUES.to_vec());
        let l = LargeStringArray::from(VALUES.to_vec());
        let v = StringViewArray::from(VALUES.to_vec());
        let d: DictionaryArray<Int32Type> = VALUES.iter().copied().collect();
        for a in [&s as &dyn Array, &l, &v, &d] {
            assert_eq!(
                bools(&match_array(a, &set()).unwrap()),
                EXPECTED,
                "{:?}",
                a.data_type()
            );
        }
    }

    #[test]
    fn sliced_arrays_keep_their_offset() {
        let s = StringArray::from(VALUES.to_vec());
        let sliced = s.slice(1, 4);
        assert_eq!(bools(&match_array(&sliced, &set()).unwrap()), EXPECTED[1..]);
    }

    #[test]
    fn lists_match_when_any_element_matches() {
        let mut b = ListBuilder::new(StringBuilder::new());
        b.append_value([Some("UNKNOWN(1)"), Some("C:\\Windows\\System32\\ntdll.dll")]);
        b.append_value([Some("UNKNOWN(1)")]);
        b.append_null();
        b.append_value(Vec::<Option<&str>>::new());
        let lists = b.finish();
        assert_eq!(
            bools(&match_array(&lists, &set()).unwrap()),
            [true, false, false, false]
        );
    }

    #[test]
    fn long_arrays_split_across_threads_agree() {
        let values: Vec<Option<String>> = (0..200_003)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(format!("C:\\WINDOWS\\SYSTEM32\\ntdll.dll+{i:x}")),
                _ => Some(format!("UNKNOWN({i:x})")),
            })
            .collect();
        let a = StringArray::from(values.clone());
        let got = bools(&match_array(&a, &set()).unwrap());
        let want: Vec<bool> = values
            .iter()
            .map(|v| v.as_deref().is_some_and(|v| set().is_match(v)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn only_selected_rows_are_matched() {
        let v = StringViewArray::from(VALUES.to_vec());
        for selected in [
            vec![true, true, true, true, true],
            vec![true, false, false, false, true],
            vec![false, false, false, false, false],
        ] {
            let rows = BooleanBuffer::from(selected.clone());
            let got = match_rows(&v, &set(), Some(&rows)).unwrap();
            let want: Vec<bool> = EXPECTED
                .iter()
                .zip(&selected)
                .map(|(e, s)| *e && *s)
                .collect();
            assert_eq!(got.iter().collect::<Vec<_>>(), want);
        }
        // A sparse mask over a long array takes the set-bits path.
        let long = StringArray::from(vec![Some("C:\\Windows\\System32\\ntdll.dll"); 1000]);
        let rows = BooleanBuffer::collect_bool(1000, |i| i % 100 == 7);
        let got = match_rows(&long, &set(), Some(&rows)).unwrap();
        assert_eq!(
            got.set_indices().collect::<Vec<_>>(),
            (0..10).map(|k| k * 100 + 7).collect::<Vec<_>>()
        );
    }

    /// A view array whose rows reuse the views of `base` (as polars decodes a dictionary
    /// column: equal values share one view), picked by `picks`.
    fn repeated_views(base: &StringViewArray, picks: &[usize]) -> StringViewArray {
        let views: Vec<u128> = picks.iter().map(|&k| base.views()[k]).collect();
        let nulls: Vec<bool> = picks.iter().map(|&k| base.is_valid(k)).collect();
        StringViewArray::try_new(
            views.into(),
            base.data_buffers().to_vec(),
            Some(NullBuffer::from(nulls)),
        )
        .unwrap()
    }

    fn sets() -> Vec<PatternSet> {
        vec![
            set(),
            PatternSet::new(&["UNKNOWN(*"]),
            PatternSet::new(&["*unknown(*"]),
            PatternSet::with_case(&["*UNKNOWN(*"], true),
            PatternSet::literals(&["0x1fffff", "0x1410"]),
            PatternSet::new(&["?:\\Program Files\\*\\sfc.exe", "*\\lsass.exe"]),
            PatternSet::new(&["*"]),
        ]
    }

    const DISTINCT: [Option<&str>; 9] = [
        Some("C:\\Windows\\System32\\ntdll.dll+1|x"),
        Some("c:\\windows\\SYSTEM32\\ntdll.dll+9d4c4|UNKNOWN(0001)"),
        Some("UNKNOWN(00000000001)|C:\\Windows\\System32\\win32u.dll+3"),
        Some("0x1fffff"),
        Some("0x1410"),
        Some(""),
        None,
        Some("C:\\Program Files\\Cisco\\AMP\\8.1\\sfc.exe"),
        Some("é:\\Windows\\system32\\lsass.exe"),
    ];

    proptest::proptest! {
        /// Repeated views (answered from the per-thread table) and first-byte rejections give
        /// exactly the answers of matching every value.
        #[test]
        fn repeated_views_give_every_value_its_answer(
            picks in proptest::collection::vec(0usize..DISTINCT.len(), 0..3000),
            sparse in proptest::collection::vec(proptest::bool::weighted(0.05), 3000),
        ) {
            let base = StringViewArray::from(DISTINCT.to_vec());
            let array = repeated_views(&base, &picks);
            for set in sets() {
                let want: Vec<bool> = picks
                    .iter()
                    .map(|&k| DISTINCT[k].is_some_and(|v| set.is_match(v)))
                    .collect();
                proptest::prop_assert_eq!(bools(&match_array(&array, &set).unwrap()), want.clone());
                let rows = BooleanBuffer::from(sparse[..picks.len()].to_vec());
                let got = match_rows(&array, &set, Some(&rows)).unwrap();
                let masked: Vec<bool> = want.iter().zip(&sparse).map(|(w, s)| *w && *s).collect();
                proptest::prop_assert_eq!(got.iter().collect::<Vec<_>>(), masked);
            }
        }
    }

    #[test]
    fn distinct_views_past_the_trial_agree() {
        // Every value distinct: the table gets no hits and is switched off; the answers stay.
        let values: Vec<String> = (0..300_000)
            .map(|i| match i % 3 {
                0 => format!("C:\\Windows\\System32\\ntdll.dll+{i:x}|UNKNOWN({i})"),
                1 => format!("UNKNOWN({i:x})|C:\\x.dll"),
                _ => format!("{i:x}"),
            })
            .collect();
        let a = StringViewArray::from_iter_values(values.iter());
        for set in sets() {
            let want: Vec<bool> = values.iter().map(|v| set.is_match(v)).collect();
            assert_eq!(bools(&match_array(&a, &set).unwrap()), want);
        }
    }

    #[test]
    fn dictionary_without_values_matches_nothing() {
        let d: DictionaryArray<Int32Type> = vec![None::<&str>, None].into_iter().collect();
        assert_eq!(d.values().len(), 0);
        assert_eq!(bools(&match_array(&d, &set()).unwrap()), [false, false]);
    }

    #[test]
    fn other_types_are_an_error() {
        let ints = arrow_array::Int32Array::from(vec![1, 2]);
        assert!(matches!(
            match_array(&ints, &set()),
            Err(Error::UnsupportedType(_))
        ));
    }
}
