//! Column builders for one batch.
//!
//! Most columns are null in most rows (a Sysmon EventData column only has values in the events
//! that carry that name), so each builder is written at an absolute row index and fills the rows
//! it skipped with nulls in one go, instead of being called once per row.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{ArrowNativeType, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::row::{fmt_i64, itoa_buf};
use super::schema::Layout;

/// The capacity to give a builder for the next batch, one that held `len` in the last: a
/// batch of the same chunks' share can hold more of a column (groups mix logs and event ids
/// differently), and a vector that outgrows its capacity is copied whole to a new one twice
/// its size (on a mix of the sample logs, callgrind: half the bytes copied so, against sizing
/// exactly). Capacity not written to is never touched: it costs address space, not memory.
fn headroom(len: usize) -> usize {
    len + len / 2
}

/// A nullable column of fixed-width values.
pub(crate) struct PrimCol<T: ArrowNativeType> {
    values: Vec<T>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowNativeType> PrimCol<T> {
    fn new() -> Self {
        PrimCol {
            values: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn pad(&mut self, rows: usize) {
        let missing = rows.saturating_sub(self.values.len());
        if missing > 0 {
            self.values.resize(rows, T::default());
            self.nulls.append_n_nulls(missing);
        }
    }

    /// Sets row `row`; false (and nothing written) when it already has a value.
    pub fn push(&mut self, row: usize, value: T) -> bool {
        if self.values.len() > row {
            return false;
        }
        self.pad(row);
        self.values.push(value);
        self.nulls.append_non_null();
        true
    }

    /// Whether no row has been written (nor padded) since the last batch: the builder is as
    /// `finish` leaves it, and stays so when the batch takes an all-null array instead.
    fn untouched(&self) -> bool {
        self.values.is_empty()
    }

    fn finish(&mut self, rows: usize) -> (ScalarBuffer<T>, Option<arrow_buffer::NullBuffer>) {
        self.pad(rows);
        // The next batch is likely about as big: no growing (and copying) it step by step.
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(headroom(rows)));
        (ScalarBuffer::from(values), self.nulls.finish())
    }
}

/// A nullable Utf8 column.
pub(crate) struct StrCol {
    offsets: Vec<i32>,
    data: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl StrCol {
    fn new() -> Self {
        StrCol {
            offsets: vec![0],
            data: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn pad(&mut self, rows: usize) {
        let missing = rows.saturating_sub(self.len());
        if missing > 0 {
            let last = *self.offsets.last().expect("offsets start with 0");
            self.offsets.resize(self.offsets.len() + missing, last);
            self.nulls.append_n_nulls(missing);
        }
    }

    /// Sets row `row`; false (and nothing written) when it already has a value or the column
    /// would outgrow 32-bit offsets.
    pub fn push(&mut self, row: usize, value: &str) -> bool {
        if self.len() > row {
            return false;
        }
        let Ok(end) = i32::try_from(self.data.len() + value.len()) else {
            return false;
        };
        self.pad(row);
        self.data.extend_from_slice(value.as_bytes());
        self.offsets.push(end);
        self.nulls.append_non_null();
        true
    }

    /// Sets row `row` to what `build` writes (straight into the column's data: no copy of a
    /// value built elsewhere); nothing is set, and false returned, when `build` writes nothing
    /// or returns false, when the row already has a value, or when the column would outgrow
    /// 32-bit offsets.
    pub fn push_built(&mut self, row: usize, build: impl FnOnce(&mut String) -> bool) -> bool {
        if self.len() > row {
            return false;
        }
        let start = self.data.len();
        // SAFETY: the data is a concatenation of `&str`s (see `finish`), so valid UTF-8; `build`
        // only appends to it as a `String`, which keeps it so.
        let mut text = unsafe { String::from_utf8_unchecked(std::mem::take(&mut self.data)) };
        let built = build(&mut text);
        self.data = text.into_bytes();
        let end = match i32::try_from(self.data.len()) {
            Ok(end) if built && self.data.len() > start => end,
            _ => {
                self.data.truncate(start);
                return false;
            }
        };
        self.pad(row);
        self.offsets.push(end);
        self.nulls.append_non_null();
        true
    }

    /// Whether no row has been written (nor padded) since the last batch (see `PrimCol`).
    fn untouched(&self) -> bool {
        self.offsets.len() == 1
    }

    fn finish(&mut self, rows: usize) -> StringArray {
        self.pad(rows);
        // The next batch is likely about as big: no growing (and copying) it step by step.
        let mut next = Vec::with_capacity(headroom(self.offsets.len()));
        next.push(0);
        let offsets = std::mem::replace(&mut self.offsets, next);
        let size = self.data.len();
        let data = std::mem::replace(&mut self.data, Vec::with_capacity(headroom(size)));
        let nulls = self.nulls.finish();
        // SAFETY: the offsets start at 0, never decrease (each push appends the end of the
        // data) and end at the data's length; the data is the concatenation of `&str`s, cut at
        // those offsets, so each value is valid UTF-8; there is one null bit per value.
        unsafe {
            StringArray::new_unchecked(
                OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)),
                Buffer::from_vec(data),
                nulls,
            )
        }
    }
}

/// A nullable dictionary-encoded (Int32 keys) Utf8 column, for values that repeat: channel,
/// provider, computer.
pub(crate) struct DictCol {
    keys: PrimCol<i32>,
    values: StrCol,
    index: HashMap<Box<str>, i32>,
    last: Option<(i32, Box<str>)>,
}

impl DictCol {
    fn new() -> Self {
        DictCol {
            keys: PrimCol::new(),
            values: StrCol::new(),
            index: HashMap::new(),
            last: None,
        }
    }

    pub fn push(&mut self, row: usize, value: &str) -> bool {
        if self.keys.values.len() > row {
            return false;
        }
        let key = match &self.last {
            Some((key, last)) if **last == *value => *key,
            _ => {
                let key = match self.index.get(value) {
                    Some(&key) => key,
                    None => {
                        let key = self.values.len() as i32;
                        if !self.values.push(key as usize, value) {
                            return false;
                        }
                        self.index.insert(value.into(), key);
                        key
                    }
                };
                self.last = Some((key, value.into()));
                key
            }
        };
        self.keys.push(row, key)
    }

    fn finish(&mut self, rows: usize) -> ArrayRef {
        let (keys, nulls) = self.keys.finish(rows);
        let values = self.values.finish(self.values.len());
        self.index.clear();
        self.last = None;
        let keys = Int32Array::new(keys, nulls);
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
                .expect("keys index the dictionary"),
        )
    }
}

/// All the columns of one batch, in the making.
pub(crate) struct Columns {
    /// Rows written so far (the index of the row being written).
    pub rows: usize,
    pub timestamp: PrimCol<i64>,
    pub event_code: StrCol,
    /// Whether `event.category` is `["process"]` (else null), per row.
    pub category_process: Vec<bool>,
    pub host_name: DictCol,
    pub executable: StrCol,
    pub entity_id: StrCol,
    pub pid: PrimCol<i64>,
    pub thread_id: PrimCol<i64>,
    pub event_id: PrimCol<i32>,
    pub record_id: PrimCol<i64>,
    pub channel: DictCol,
    pub provider_name: DictCol,
    pub provider_guid: StrCol,
    pub keywords: StrCol,
    pub level: PrimCol<i32>,
    pub task: PrimCol<i32>,
    pub opcode: PrimCol<i32>,
    pub version: PrimCol<i32>,
    pub exec_pid: PrimCol<i64>,
    pub exec_tid: PrimCol<i64>,
    pub user_id: StrCol,
    /// `winlog.event_data.<name>`, in [`Layout::sysmon_names`] order.
    pub sysmon: Vec<StrCol>,
    pub other: StrCol,
    pub record_number: Vec<i64>,
    pub chunk: Vec<i32>,
}

impl Columns {
    pub fn new() -> Self {
        Columns {
            rows: 0,
            timestamp: PrimCol::new(),
            event_code: StrCol::new(),
            category_process: Vec::new(),
            host_name: DictCol::new(),
            executable: StrCol::new(),
            entity_id: StrCol::new(),
            pid: PrimCol::new(),
            thread_id: PrimCol::new(),
            event_id: PrimCol::new(),
            record_id: PrimCol::new(),
            channel: DictCol::new(),
            provider_name: DictCol::new(),
            provider_guid: StrCol::new(),
            keywords: StrCol::new(),
            level: PrimCol::new(),
            task: PrimCol::new(),
            opcode: PrimCol::new(),
            version: PrimCol::new(),
            exec_pid: PrimCol::new(),
            exec_tid: PrimCol::new(),
            user_id: StrCol::new(),
            sysmon: (0..Layout::get().sysmon_names.len())
                .map(|_| StrCol::new())
                .collect(),
            other: StrCol::new(),
            record_number: Vec::new(),
            chunk: Vec::new(),
        }
    }

    /// The batch of the rows written, with `path` as every row's `log.file.path`; the builders
    /// are left empty for the next batch.
    pub fn finish(&mut self, path: &str) -> RecordBatch {
        let rows = self.rows;
        let layout = Layout::get();
        let (no_i64s, no_i32s): (OnceCell<ArrayRef>, OnceCell<ArrayRef>) = Default::default();
        let i64col = |c: &mut PrimCol<i64>| -> ArrayRef {
            if c.untouched() {
                return Arc::clone(no_i64s.get_or_init(|| Arc::new(Int64Array::new_null(rows))));
            }
            let (values, nulls) = c.finish(rows);
            Arc::new(Int64Array::new(values, nulls))
        };
        let i32col = |c: &mut PrimCol<i32>| -> ArrayRef {
            if c.untouched() {
                return Arc::clone(no_i32s.get_or_init(|| Arc::new(Int32Array::new_null(rows))));
            }
            let (values, nulls) = c.finish(rows);
            Arc::new(Int32Array::new(values, nulls))
        };
        // Most Sysmon EventData columns (and some System ones) hold no value in a batch of other
        // events: such columns share one all-null array, instead of each writing offsets for
        // every row (4 bytes per row and column) and a null bitmap of its own.
        let no_strings: OnceCell<ArrayRef> = OnceCell::new();
        let strcol = |c: &mut StrCol| -> ArrayRef {
            if c.untouched() {
                return Arc::clone(
                    no_strings.get_or_init(|| Arc::new(StringArray::new_null(rows))),
                );
            }
            Arc::new(c.finish(rows))
        };

        let (ts, ts_nulls) = self.timestamp.finish(rows);
        let timestamp: ArrayRef =
            Arc::new(TimestampMicrosecondArray::new(ts, ts_nulls).with_timezone("UTC"));

        let mut columns: Vec<ArrayRef> = vec![
            timestamp,
            strcol(&mut self.event_code),
            Arc::new(category_column(&self.category_process)),
            self.host_name.finish(rows),
            Arc::new(repeated(b"windows", rows)),
            strcol(&mut self.executable),
            strcol(&mut self.entity_id),
            i64col(&mut self.pid),
            i64col(&mut self.thread_id),
            i32col(&mut self.event_id),
            i64col(&mut self.record_id),
            self.channel.finish(rows),
            self.provider_name.finish(rows),
            strcol(&mut self.provider_guid),
            strcol(&mut self.keywords),
            i32col(&mut self.level),
            i32col(&mut self.task),
            i32col(&mut self.opcode),
            i32col(&mut self.version),
            i64col(&mut self.exec_pid),
            i64col(&mut self.exec_tid),
            strcol(&mut self.user_id),
        ];
        for col in &mut self.sysmon {
            columns.push(strcol(col));
        }
        columns.push(strcol(&mut self.other));
        columns.push(Arc::new(repeated(path.as_bytes(), rows)));
        // The next batch is likely as big: sized as this one.
        let record_number = std::mem::replace(&mut self.record_number, Vec::with_capacity(rows));
        columns.push(Arc::new(Int64Array::new(
            ScalarBuffer::from(record_number),
            None,
        )));
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(rows));
        columns.push(Arc::new(Int32Array::new(ScalarBuffer::from(chunk), None)));
        self.category_process.clear();
        self.rows = 0;
        RecordBatch::try_new(layout.schema.clone(), columns).expect("the columns match the schema")
    }
}

/// Where a batch's rows go: one set of columns, or one per kind of event code, so that each
/// batch holds rows of one kind only. The kinds are those of callsweep's Parquet layout
/// (`callsweep.layout`): codes that sort before "10" as text (and rows without one), "10", and
/// codes that sort after it; a writer then fills row groups that statistics let a scan for
/// event 10 skip, without filtering rows apart again.
pub(crate) struct Sinks {
    kinds: Vec<Columns>,
}

impl Sinks {
    pub fn new(by_kind: bool) -> Self {
        let kinds = if by_kind { 3 } else { 1 };
        Sinks {
            kinds: (0..kinds).map(|_| Columns::new()).collect(),
        }
    }

    pub fn by_kind(&self) -> bool {
        self.kinds.len() > 1
    }

    /// The columns a row of this event id goes to.
    pub fn for_event(&mut self, event_id: Option<i64>) -> &mut Columns {
        let kind = if self.by_kind() {
            code_kind(event_id)
        } else {
            0
        };
        &mut self.kinds[kind]
    }

    pub fn rows(&self) -> usize {
        self.kinds.iter().map(|c| c.rows).sum()
    }

    /// A batch per kind that has rows, in kind order; the builders are left empty.
    pub fn finish(&mut self, path: &str) -> Vec<RecordBatch> {
        self.kinds
            .iter_mut()
            .filter(|c| c.rows > 0)
            .map(|c| c.finish(path))
            .collect()
    }
}

/// 0, 1 or 2: the event code (`event_id` as decimal text) sorts before "10" (or there is none),
/// is "10", or sorts after it.
pub(crate) fn code_kind(event_id: Option<i64>) -> usize {
    let Some(id) = event_id else { return 0 };
    let mut buf = itoa_buf();
    match fmt_i64(&mut buf, id).as_bytes().cmp(b"10") {
        std::cmp::Ordering::Less => 0,
        std::cmp::Ordering::Equal => 1,
        std::cmp::Ordering::Greater => 2,
    }
}

/// `value` in each of `rows` rows.
fn repeated(value: &[u8], rows: usize) -> StringArray {
    let len = value.len();
    let offsets: Vec<i32> = (0..=rows).map(|i| (i * len) as i32).collect();
    StringArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(value.repeat(rows)),
        None,
    )
}

/// `["process"]` where `flags` is set, null elsewhere.
fn category_column(flags: &[bool]) -> ListArray {
    let mut offsets = Vec::with_capacity(flags.len() + 1);
    let mut nulls = NullBufferBuilder::new(flags.len());
    let mut count = 0i32;
    offsets.push(0);
    for &set in flags {
        if set {
            count += 1;
        }
        offsets.push(count);
        nulls.append(set);
    }
    let values = repeated(b"process", count as usize);
    ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(values),
        nulls.finish(),
    )
}

#[cfg(test)]
mod tests {
    use super::{code_kind, Columns, StrCol};
    use arrow_array::cast::AsArray;
    use arrow_array::Array;

    #[test]
    fn columns_without_a_value_are_null_and_fill_in_the_next_batch() {
        let mut cols = Columns::new();
        for batch in 0..2 {
            for row in 0..3 {
                assert!(cols.event_code.push(row, "10"));
                // What every row has (`Row::commit`).
                cols.category_process.push(true);
                cols.record_number.push(row as i64);
                cols.chunk.push(0);
                // The first EventData column has a value in the second batch only, at row 1.
                if batch == 1 && row == 1 {
                    assert!(cols.sysmon[0].push(row, "value"));
                    assert!(cols.exec_pid.push(row, 42));
                }
                cols.rows += 1;
            }
            let batch_columns = cols.finish("a.evtx");
            let sysmon = batch_columns.column(
                batch_columns
                    .schema()
                    .index_of(&format!(
                        "winlog.event_data.{}",
                        super::Layout::get().sysmon_names[0]
                    ))
                    .unwrap(),
            );
            let pid = batch_columns.column_by_name("winlog.process.pid").unwrap();
            assert_eq!((sysmon.len(), pid.len()), (3, 3));
            if batch == 0 {
                assert_eq!((sysmon.null_count(), pid.null_count()), (3, 3));
            } else {
                let values: Vec<Option<&str>> = sysmon.as_string::<i32>().iter().collect();
                assert_eq!(values, [None, Some("value"), None]);
                let pids = pid.as_primitive::<arrow_array::types::Int64Type>();
                assert_eq!(pids.iter().collect::<Vec<_>>(), [None, Some(42), None]);
            }
        }
    }

    #[test]
    fn a_built_value_is_set_only_when_something_was_written() {
        let mut col = StrCol::new();
        assert!(col.push_built(0, |s| {
            s.push_str("{\"a\":1}");
            true
        }));
        // Written but given up, and nothing written: no value, nothing left behind.
        assert!(!col.push_built(1, |s| {
            s.push_str("partial");
            false
        }));
        assert!(!col.push_built(1, |_| true));
        assert!(col.push_built(2, |s| {
            s.push('é');
            true
        }));
        // Row 2 has its value already.
        assert!(!col.push_built(2, |s| {
            s.push('x');
            true
        }));
        let array = col.finish(4);
        let values: Vec<Option<&str>> = array.iter().collect();
        assert_eq!(values, [Some("{\"a\":1}"), None, Some("é"), None]);
    }

    #[test]
    fn code_kinds_sort_as_text_around_10() {
        // As the layout's `event.code` statistics compare: text, not numbers.
        for (id, kind) in [
            (None, 0),
            (Some(1), 0),
            (Some(0), 0),
            (Some(-5), 0),
            (Some(10), 1),
            (Some(100), 2),
            (Some(11), 2),
            (Some(2), 2),
            (Some(4688), 2),
            (Some(1000), 2),
        ] {
            assert_eq!(code_kind(id), kind, "{id:?}");
        }
    }
}
