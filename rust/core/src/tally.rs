//! Rows grouped by their combination of values, without reading the values: the alert tallies
//! (per host, per source and target image, per rule) over hundreds of thousands of alerts.
//!
//! A string view names its value: equal views of one array hold equal strings (the same inline
//! bytes, or the same length, buffer and offset). The values the tallies group by repeat
//! endlessly and share their views: polars decodes a dictionary page into views of one copy of
//! each value, `compact` copies a repeated value once, and the rule columns are gathered from
//! one row per rule. So rows are grouped here by their views, hashing 16 bytes per value and
//! never touching the strings: a few thousand groups for hundreds of thousands of rows (4,023
//! for the 325,792 alerts of ten rules over 2M events). Views that differ may still hold equal
//! strings (the same value in two buffers), so the groups are a partition finer than the one
//! by value, which the caller merges by value, on those few thousand rows.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

use crate::word_hash::WordMap;
use crate::Error;

/// The groups of rows sharing the views of every column, in the order their first row comes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Each group's first row.
    pub first_rows: Vec<u64>,
    /// Each group's number of rows.
    pub counts: Vec<u64>,
}

/// The key of a null value; no view is all ones (a view's length is below 2^31).
const NULL_KEY: u128 = u128::MAX;

/// Groups the rows of equal-length columns, each given as its chunks in row order (chunk
/// boundaries need not agree between columns), by their views. Columns of string views, or of
/// nulls only; any other type is an error.
pub fn tally(columns: &[Vec<ArrayRef>]) -> Result<Tally, Error> {
    let rows = columns
        .first()
        .map_or(0, |c| c.iter().map(|a| a.len()).sum());
    // Each column's values numbered in first-seen order, then the columns paired off one by
    // one into numbers of their combinations: a few small tables, no key per row in memory.
    let mut ids = vec![0u32; rows];
    for (c, chunks) in columns.iter().enumerate() {
        let length: usize = chunks.iter().map(|a| a.len()).sum();
        if length != rows {
            return Err(Error::Shape(format!(
                "column {c} has {length} rows, column 0 has {rows}"
            )));
        }
        let column = view_ids(chunks)?;
        ids = if c == 0 {
            column
        } else {
            number(
                ids.iter()
                    .zip(&column)
                    .map(|(&a, &b)| (a as u128) << 32 | b as u128),
            )
        };
    }
    let mut tally = Tally::default();
    for (r, &id) in ids.iter().enumerate() {
        if id as usize == tally.counts.len() {
            tally.first_rows.push(r as u64);
            tally.counts.push(0);
        }
        tally.counts[id as usize] += 1;
    }
    Ok(tally)
}

/// A column's views numbered in first-seen order (nulls share one number).
fn view_ids(chunks: &[ArrayRef]) -> Result<Vec<u32>, Error> {
    let mut numbers = Numbering::new(chunks.iter().map(|c| c.len()).sum());
    for chunk in chunks {
        match chunk.data_type() {
            DataType::Utf8View => {
                let array = chunk.as_string_view();
                let nulls = array.nulls();
                for (i, &view) in array.views().iter().enumerate() {
                    let valid = nulls.is_none_or(|n| n.is_valid(i));
                    numbers.push(if valid { view } else { NULL_KEY });
                }
            }
            DataType::Null => (0..chunk.len()).for_each(|_| numbers.push(NULL_KEY)),
            other => return Err(Error::UnsupportedType(other.to_string())),
        }
    }
    Ok(numbers.out)
}

/// Each key numbered by its first appearance.
fn number(keys: impl Iterator<Item = u128>) -> Vec<u32> {
    let mut numbers = Numbering::new(keys.size_hint().0);
    keys.for_each(|key| numbers.push(key));
    numbers.out
}

/// Keys numbered by their first appearance. The keys repeat a few thousand values, so a
/// direct-mapped table of recent keys answers most rows before the hash map is asked.
struct Numbering {
    seen: WordMap<u128, u32>,
    // (key, number + 1); 0: empty.
    recent: Vec<(u128, u32)>,
    out: Vec<u32>,
}

impl Numbering {
    fn new(rows: usize) -> Numbering {
        Numbering {
            seen: WordMap::default(),
            recent: vec![(0u128, 0u32); 1 << RECENT_BITS],
            out: Vec::with_capacity(rows),
        }
    }

    #[inline]
    fn push(&mut self, key: u128) {
        let mix = (key as u64 ^ (key >> 64) as u64 ^ (key >> 96) as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let slot = (mix >> (64 - RECENT_BITS)) as usize;
        let (known, id) = self.recent[slot];
        if id != 0 && known == key {
            self.out.push(id - 1);
            return;
        }
        let next = self.seen.len() as u32;
        let id = *self.seen.entry(key).or_insert(next);
        self.recent[slot] = (key, id + 1);
        self.out.push(id);
    }
}

const RECENT_BITS: u32 = 12;

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{NullArray, StringViewArray};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The reference: groups by the strings themselves, in first-seen order.
    fn by_value(rows: &[Vec<Option<String>>]) -> Vec<(Vec<Option<String>>, u64)> {
        let mut groups: Vec<(Vec<Option<String>>, u64)> = Vec::new();
        for row in rows {
            match groups.iter_mut().find(|(key, _)| key == row) {
                Some((_, n)) => *n += 1,
                None => groups.push((row.clone(), 1)),
            }
        }
        groups
    }

    fn value() -> impl Strategy<Value = Option<String>> {
        prop::option::of(
            prop::sample::select(vec![
                "",
                "host-1",
                "exactly12byt",
                "C:\\Windows\\System32\\lsass.exe",
                "C:\\Windows\\System32\\svchost.exe",
            ])
            .prop_map(str::to_owned),
        )
    }

    proptest! {
        /// Merged by value, the groups are those of the values, with the same counts, and each
        /// group's first row holds its values; chunks are cut differently per column.
        #[test]
        fn groups_merged_by_value_are_the_groups_of_the_values(
            rows in prop::collection::vec(prop::collection::vec(value(), 2), 0..80),
            cuts in prop::collection::vec(0usize..80, 2),
        ) {
            let columns: Vec<Vec<ArrayRef>> = (0..2)
                .map(|c| {
                    let values: Vec<Option<String>> = rows.iter().map(|r| r[c].clone()).collect();
                    let cut = cuts[c].min(values.len());
                    // Each chunk its own array: equal long strings in different buffers.
                    vec![
                        Arc::new(StringViewArray::from(values[..cut].to_vec())) as ArrayRef,
                        Arc::new(StringViewArray::from(values[cut..].to_vec())) as ArrayRef,
                    ]
                })
                .collect();
            let tally = tally(&columns).unwrap();
            prop_assert_eq!(tally.counts.iter().sum::<u64>(), rows.len() as u64);
            prop_assert!(tally.first_rows.windows(2).all(|w| w[0] < w[1]));
            let mut merged: Vec<(Vec<Option<String>>, u64)> = Vec::new();
            for (&first, &n) in tally.first_rows.iter().zip(&tally.counts) {
                let key = rows[first as usize].clone();
                match merged.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, m)) => *m += n,
                    None => merged.push((key, n)),
                }
            }
            prop_assert_eq!(merged, by_value(&rows));
        }
    }

    #[test]
    fn repeated_views_form_one_group() {
        let distinct = StringViewArray::from(vec!["C:\\Windows\\System32\\lsass.exe", "x"]);
        let picks = [0usize, 1, 0, 0, 1];
        let views: Vec<u128> = picks.iter().map(|&k| distinct.views()[k]).collect();
        let repeated =
            StringViewArray::try_new(views.into(), distinct.data_buffers().to_vec(), None).unwrap();
        let nulls: ArrayRef = Arc::new(NullArray::new(5));
        let tally = tally(&[vec![Arc::new(repeated) as ArrayRef], vec![nulls]]).unwrap();
        assert_eq!(tally.first_rows, vec![0, 1]);
        assert_eq!(tally.counts, vec![3, 2]);
    }

    #[test]
    fn other_types_and_uneven_columns_are_errors() {
        let ints: ArrayRef = Arc::new(arrow_array::Int64Array::from(vec![1, 2]));
        assert!(matches!(
            tally(&[vec![ints]]),
            Err(Error::UnsupportedType(_))
        ));
        let a: ArrayRef = Arc::new(StringViewArray::from(vec!["a", "b"]));
        let b: ArrayRef = Arc::new(StringViewArray::from(vec!["a"]));
        assert!(matches!(tally(&[vec![a], vec![b]]), Err(Error::Shape(_))));
    }
}
