//! Decoding chunks into batches: one record after another, each damaged record or chunk
//! recorded as an error and passed over, and a panic of the evtx crate contained.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::RecordBatch;
use evtx::err::EvtxError;
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxRecord, EvtxRecordHeader, ParserSettings};

use super::columns::Sinks;
use super::json::{read_json, JsonScratch};
use super::layout::for_layout;
use super::row::Row;
use super::template::{read_template, TemplateCache};
use super::DecodeError;

pub(crate) const FILE_HEADER_SIZE: u64 = 4096;
pub(crate) const CHUNK_SIZE: u64 = 65536;
const CHUNK_HEADER_SIZE: u64 = 512;
const RECORD_HEADER_SIZE: u64 = 24;

/// The file offset of chunk `chunk`.
pub(crate) fn chunk_offset(chunk: u64) -> u64 {
    FILE_HEADER_SIZE.saturating_add(chunk.saturating_mul(CHUNK_SIZE))
}

/// A chunk as the reader found it.
pub(crate) enum ChunkInput {
    Read(Box<EvtxChunkData>),
    Failed(DecodeError),
}

impl ChunkInput {
    fn number(&self) -> u64 {
        match self {
            ChunkInput::Read(data) => data.number.unwrap_or(0),
            ChunkInput::Failed(err) => err.chunk,
        }
    }
}

/// What decoding a group of chunks gave.
pub(crate) struct GroupOutput {
    /// One batch, or with `by_kind` one per kind of event code (`Sinks`); none without rows.
    pub batches: Vec<RecordBatch>,
    pub errors: Vec<DecodeError>,
    pub chunks: u64,
    /// Records read by the template fast path.
    pub template_records: u64,
}

/// One thread's decoding state (reused from chunk to chunk).
pub(crate) struct Decoder {
    settings: Arc<ParserSettings>,
    fast_path: bool,
    row: Row,
    json: JsonScratch,
    templates: TemplateCache,
    template_records: u64,
    /// The column builders, kept from batch to batch (sized as the last one).
    cols: Option<Sinks>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            // As `EvtxParser::records` reads: no checksum validation, no carving.
            settings: Arc::new(ParserSettings::new().indent(false)),
            fast_path: true,
            row: Row::default(),
            json: JsonScratch::default(),
            templates: TemplateCache::default(),
            template_records: 0,
            cols: None,
        }
    }

    /// Decodes consecutive chunks into one batch, or one per kind of event code (`fast_path`,
    /// `by_kind`, `layout_form`: see `EvtxOptions`). A panic here
    /// that the per-record guards did not contain (a bug of this module) loses the group,
    /// recorded as an error for each chunk.
    pub fn decode_group(
        &mut self,
        chunks: Vec<ChunkInput>,
        path: &str,
        fast_path: bool,
        by_kind: bool,
        layout_form: bool,
    ) -> GroupOutput {
        self.fast_path = fast_path;
        let numbers: Vec<u64> = chunks.iter().map(ChunkInput::number).collect();
        let count = chunks.len() as u64;
        self.template_records = 0;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut cols = match self.cols.take() {
                Some(cols) if cols.by_kind() == by_kind => cols,
                _ => Sinks::new(by_kind),
            };
            let mut errors = Vec::new();
            for chunk in chunks {
                match chunk {
                    ChunkInput::Failed(err) => errors.push(err),
                    ChunkInput::Read(data) => self.decode_chunk(*data, &mut cols, &mut errors),
                }
            }
            let mut batches = if cols.rows() > 0 {
                cols.finish(path)
            } else {
                Vec::new()
            };
            if layout_form {
                batches = batches.into_iter().map(for_layout).collect();
            }
            self.cols = Some(cols);
            (batches, errors)
        }));
        match result {
            Ok((batches, errors)) => GroupOutput {
                batches,
                errors,
                chunks: count,
                template_records: self.template_records,
            },
            Err(panic) => {
                let message = format!(
                    "internal error decoding the chunk: {}",
                    panic_message(&*panic)
                );
                *self = Decoder::new();
                GroupOutput {
                    batches: Vec::new(),
                    errors: numbers
                        .into_iter()
                        .map(|chunk| DecodeError {
                            chunk,
                            offset: chunk_offset(chunk),
                            message: message.clone(),
                        })
                        .collect(),
                    chunks: count,
                    template_records: 0,
                }
            }
        }
    }

    fn decode_chunk(
        &mut self,
        mut data: EvtxChunkData,
        cols: &mut Sinks,
        errors: &mut Vec<DecodeError>,
    ) {
        let number = data.number.unwrap_or(0);
        let base = chunk_offset(number);
        let error = |offset: u64, message: String| DecodeError {
            chunk: number,
            offset,
            message,
        };
        // An intact chunk (its CRC32s check out) is as Windows wrote it: the fast walk may read it.
        // The crate's parse comes first all the same (3% of decoding, the chunk's string table
        // read into owned strings): a chunk whose string table it cannot read is one it yields
        // no record of, and so must this (`garbled_files_give_what_the_evtx_crate_reads`).
        let intact = self.fast_path && data.validate_checksum();
        let settings = Arc::clone(&self.settings);
        let parsed = catch_unwind(AssertUnwindSafe(|| data.parse(settings)));
        let mut chunk = match parsed {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(err)) => {
                errors.push(error(
                    base,
                    format!("failed to parse chunk {number}: {}", chain(&err)),
                ));
                return;
            }
            Err(panic) => {
                let msg = format!(
                    "the evtx parser panicked on chunk {number}: {}",
                    panic_message(&*panic)
                );
                errors.push(error(base, msg));
                return;
            }
        };
        self.templates.clear();
        // Records that start before this offset are in `cols` already.
        let mut resume_at = 0;
        if intact {
            match self.walk_intact(chunk.data, chunk.header, number, cols) {
                Walk::Done => return,
                Walk::ResumeAt(offset) => resume_at = offset,
            }
        }
        let mut records = chunk.iter();
        // Where the next record should start, for errors that don't say where they are.
        let mut next_record = CHUNK_HEADER_SIZE;
        loop {
            let item = match catch_unwind(AssertUnwindSafe(|| records.next())) {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(panic) => {
                    // The iterator's state is unknown now: the rest of the chunk is lost.
                    let msg = format!(
                        "the evtx parser panicked reading the records of chunk {number} (the rest of the chunk is skipped): {}",
                        panic_message(&*panic)
                    );
                    errors.push(error(base + next_record, msg));
                    break;
                }
            };
            let record = match item {
                Ok(record) => record,
                Err(err) => {
                    let offset = match &err {
                        EvtxError::FailedToReadRecordAt { offset, .. } => *offset,
                        _ => next_record,
                    };
                    errors.push(error(base + offset, chain(&err)));
                    continue;
                }
            };
            let start = record.binxml_offset.saturating_sub(RECORD_HEADER_SIZE);
            next_record = record.binxml_offset + u64::from(record.binxml_size) + 4;
            if start < resume_at {
                continue;
            }
            let row = &mut self.row;
            row.clear();
            row.record_number = record.event_record_id as i64;
            row.chunk = number as i32;
            row.header_timestamp = Some(record.timestamp.as_microsecond());
            let header_timestamp = row.header_timestamp;
            let (templates, json, fast_path) =
                (&mut self.templates, &mut self.json, self.fast_path);
            let read = catch_unwind(AssertUnwindSafe(|| {
                read_record(record, fast_path, templates, json, row, header_timestamp)
            }));
            match read {
                Ok(Ok(fast)) => {
                    self.template_records += u64::from(fast);
                    self.row.commit(cols.for_event(self.row.event_id));
                }
                Ok(Err(msg)) => errors.push(error(base + start, msg)),
                Err(panic) => {
                    let msg = format!(
                        "the evtx parser panicked on a record: {}",
                        panic_message(&*panic)
                    );
                    errors.push(error(base + start, msg));
                }
            }
        }
    }
}

/// How far [`Decoder::walk_intact`] went.
enum Walk {
    /// Every record of the chunk is in the columns.
    Done,
    /// The records before this offset are; the crate reads the rest.
    ResumeAt(u64),
}

impl Decoder {
    /// Reads the records of an intact chunk straight from its bytes, as long as each is of the
    /// shape the template fast path takes, walking them as the crate's record iterator does
    /// when nothing is wrong (from the chunk header to the free space, or to the chunk's last
    /// record). This saves the crate's own parse of each record (its `IterChunkRecords` builds
    /// every record's content before handing it out), a third of the work. At the first record
    /// that is not plain (or anything unexpected), it stops, and the crate reads the rest.
    fn walk_intact(
        &mut self,
        data: &[u8],
        header: &EvtxChunkHeader,
        number: u64,
        cols: &mut Sinks,
    ) -> Walk {
        let live_end = u64::from(header.free_space_offset).min(data.len() as u64);
        let mut offset = CHUNK_HEADER_SIZE;
        loop {
            if offset >= live_end {
                return Walk::Done;
            }
            let Ok(record) = EvtxRecordHeader::from_bytes_at(data, offset as usize) else {
                return Walk::ResumeAt(offset);
            };
            let Ok(size) = record.record_data_size() else {
                return Walk::ResumeAt(offset);
            };
            let start = offset + RECORD_HEADER_SIZE;
            let end = start + u64::from(size);
            if end > data.len() as u64 {
                return Walk::ResumeAt(offset);
            }
            let row = &mut self.row;
            row.clear();
            row.record_number = record.event_record_id as i64;
            row.chunk = number as i32;
            row.header_timestamp = Some(record.timestamp.as_microsecond());
            let templates = &mut self.templates;
            let read = catch_unwind(AssertUnwindSafe(|| {
                read_template(data, start as usize, end as usize, templates, row)
            }));
            if !matches!(read, Ok(true)) {
                return Walk::ResumeAt(offset);
            }
            self.row.commit(cols.for_event(self.row.event_id));
            self.template_records += 1;
            if record.event_record_id == header.last_event_record_id {
                return Walk::Done;
            }
            offset += u64::from(record.data_size);
        }
    }
}

/// Reads one record into `row`: the template fast path when it takes the record, else the JSON
/// rendering (true: the fast path). Only a record the crate cannot render is an error.
fn read_record(
    record: EvtxRecord<'_>,
    fast_path: bool,
    templates: &mut TemplateCache,
    json: &mut JsonScratch,
    row: &mut Row,
    header_timestamp: Option<i64>,
) -> Result<bool, String> {
    if fast_path {
        let data = record.chunk.data;
        let start = record.binxml_offset as usize;
        let end = start + record.binxml_size as usize;
        let fast = catch_unwind(AssertUnwindSafe(|| {
            read_template(data, start, end, templates, row)
        }));
        if matches!(fast, Ok(true)) {
            return Ok(true);
        }
        row.clear();
        row.header_timestamp = header_timestamp;
    }
    let id = record.event_record_id;
    let rendered = record
        .into_json_bytes()
        .map_err(|err| format!("record {id}: {}", chain(&err)))?;
    // The renderer writes UTF-8; a lossy copy only if it ever did not.
    let text = match std::str::from_utf8(&rendered.data) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&rendered.data),
    };
    let mut result = read_json(&text, row, json);
    if result.is_err() && text.bytes().any(|b| b < 0x20) {
        // The renderer escapes values but not names: a damaged name can hold a raw control
        // character, which JSON does not allow. The rendering is compact (no whitespace between
        // tokens), so every such character is inside a string: escape them and read again.
        let mut escaped = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if (c as u32) < 0x20 {
                escaped.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                escaped.push(c);
            }
        }
        row.clear();
        row.header_timestamp = header_timestamp;
        result = read_json(&escaped, row, json);
    }
    if let Err(problem) = result {
        // Not expected from the crate's renderer; keep the record and its whole rendering
        // rather than lose it.
        row.clear();
        row.header_timestamp = header_timestamp;
        let val = row.text_val(&text);
        row.push_item("#json", val, None);
        let val = row.text_val(&problem);
        row.push_item("#json_error", val, None);
    }
    Ok(false)
}

/// An error and its sources, `: `-joined.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
