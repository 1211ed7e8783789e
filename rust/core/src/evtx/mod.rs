//! EVTX files to Arrow record batches, on the `evtx` crate.
//!
//! [`EvtxBatches::open`] reads a file chunk by chunk (64 KiB each; memory does not grow with the
//! file), decodes groups of consecutive chunks on worker threads and yields one
//! [`RecordBatch`] per group (about `batch_rows` rows), in the order the evtx crate reads the
//! log: from its oldest chunk on, as Windows does, which is file order unless the log has
//! wrapped around. The schema ([`evtx_schema`]) is the same for every batch of every file.
//!
//! What the evtx crate does: reading the file header and the chunks (`EvtxParser`, in its
//! order), each chunk's header and string table, iterating and parsing the records of any chunk
//! that is not intact, and rendering as JSON every record the fast path does not take.
//!
//! How a record is read (`decode.rs`): from its BinXML template substitution values when its
//! template has the plain shape (`template.rs`: System, and EventData of named `Data` or a UserData
//! rendered as the crate renders it, `user_data.rs`; nearly every record of the logs we have), else
//! from the crate's JSON rendering (`json.rs`: unusual shapes). Both fill the same row model
//! (`row.rs`), so they give the same rows (tested on every sample record). In a chunk whose CRC32s
//! check out, records are walked straight from the bytes as the crate's iterator walks them; in any
//! other chunk, or from the first record the fast path does not take, the crate's iterator reads
//! them.
//!
//! Damage: every record the crate can read is kept. A chunk or record it cannot read, or a
//! panic inside it (contained per record, or per chunk when the crate's record iterator itself
//! panics), is passed over and listed in [`EvtxStats::errors`] with its chunk and file offset;
//! decoding goes on. A partial chunk at the end of the file (which the crate does not read) is
//! listed too. A file that is not EVTX at all fails [`EvtxBatches::open`].

mod columns;
mod decode;
mod json;
mod layout;
mod row;
pub mod schema;
mod template;
mod text;
mod user_data;

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use evtx::err::EvtxError;
use evtx::{EvtxParser, IntoIterChunks};

use crate::Error;
use decode::{chain, chunk_offset, ChunkInput, Decoder, GroupOutput, CHUNK_SIZE, FILE_HEADER_SIZE};

pub use layout::{layout_schema, CALL_TRACE_PREFIX_CHARS};
pub use schema::evtx_schema;

/// How to decode.
#[derive(Debug, Clone)]
pub struct EvtxOptions {
    /// Rows per batch, about (a batch holds whole chunks).
    pub batch_rows: usize,
    /// Decoding threads; 0: one per core.
    pub threads: usize,
    /// Read records from their template values where possible (else always through the crate's
    /// JSON rendering, which is slower and gives the same rows; for tests).
    pub template_fast_path: bool,
    /// Split each group's rows by kind of event code (before "10" as text, "10", after), a
    /// batch per kind, in that order within the group: what a writer of callsweep's Parquet
    /// layout wants. Rows keep their order within a kind.
    pub by_code_kind: bool,
    /// Hand out the batches in the form callsweep's Parquet layout writes them
    /// ([`layout_schema`]: dictionary columns as plain strings, the CallTrace prefix column
    /// appended), made on the decoding threads.
    pub layout_form: bool,
}

impl Default for EvtxOptions {
    fn default() -> Self {
        EvtxOptions {
            batch_rows: 65_536,
            threads: 0,
            template_fast_path: true,
            by_code_kind: false,
            layout_form: false,
        }
    }
}

/// A chunk or record passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The chunk's number in the file.
    pub chunk: u64,
    /// Where in the file: the record's offset, or the chunk's.
    pub offset: u64,
    pub message: String,
}

/// What decoding a file has found so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvtxStats {
    /// Records decoded (rows yielded).
    pub records: u64,
    /// Chunks and records passed over: `errors.len()`.
    pub skipped: u64,
    /// Chunks read, damaged ones included (empty chunks, all zeros, are not counted).
    pub chunks: u64,
    pub errors: Vec<DecodeError>,
    /// Records read straight from their template values (the others went through the crate's
    /// JSON rendering).
    pub template_records: u64,
    /// Whether the whole file has been read.
    pub finished: bool,
}

/// A handle on the statistics of an [`EvtxBatches`], readable from another thread while it
/// runs.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<EvtxStats>>);

impl StatsHandle {
    pub fn snapshot(&self) -> EvtxStats {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EvtxStats> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads a file's chunks, in the evtx crate's order.
struct ChunkSource {
    chunks: IntoIterChunks<File>,
    last_number: Option<u64>,
    /// The error for a partial chunk at the end of the file, reported once all is read.
    tail: Option<DecodeError>,
}

impl ChunkSource {
    fn next(&mut self) -> Option<ChunkInput> {
        let chunk = self.chunks.next()?;
        let guessed = self.last_number.map_or(0, |n| n + 1);
        let input = match chunk {
            Ok(data) => {
                self.last_number = data.number;
                ChunkInput::Read(Box::new(data))
            }
            Err(err) => {
                let chunk = match &err {
                    EvtxError::FailedToParseChunk { chunk_id, .. } => *chunk_id,
                    _ => guessed,
                };
                self.last_number = Some(chunk);
                ChunkInput::Failed(DecodeError {
                    chunk,
                    offset: chunk_offset(chunk),
                    message: chain(&err),
                })
            }
        };
        Some(input)
    }
}

/// A group of chunks to decode, and where its batch goes.
struct Job {
    seq: u64,
    chunks: Vec<ChunkInput>,
    path: Arc<str>,
    fast_path: bool,
    by_kind: bool,
    layout_form: bool,
    results: mpsc::Sender<Done>,
}

/// A decoded group: its sequence number and what it gave.
type Done = (u64, GroupOutput);

/// The decoding threads, shared by every reader of the process (so that many files read at
/// once do not start threads each, nor more threads than asked for). Each thread keeps its
/// decoder, whose template plans then serve file after file. A reader with `threads` = T keeps
/// at most 2T groups in flight; the pool has as many threads as the most any reader asked for.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    receiver: Arc<Mutex<Receiver<Job>>>,
    workers: Mutex<usize>,
}

impl Pool {
    fn get() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let (jobs, receiver) = mpsc::channel();
            Pool {
                jobs: Mutex::new(jobs),
                receiver: Arc::new(Mutex::new(receiver)),
                workers: Mutex::new(0),
            }
        })
    }

    /// Starts threads until there are `n` (or as many as the system lets start, at least one).
    fn ensure_workers(&self, n: usize) {
        let mut workers = lock(&self.workers);
        while *workers < n {
            let receiver = Arc::clone(&self.receiver);
            let spawned = thread::Builder::new()
                .name(format!("callsweep-evtx-{}", *workers))
                .spawn(move || {
                    let mut decoder = Decoder::new();
                    loop {
                        let job = lock(&receiver).recv();
                        let Ok(job) = job else { break };
                        let out = decoder.decode_group(
                            job.chunks,
                            &job.path,
                            job.fast_path,
                            job.by_kind,
                            job.layout_form,
                        );
                        // The reader may be gone: its results are not wanted then.
                        let _ = job.results.send((job.seq, out));
                    }
                });
            match spawned {
                Ok(_) => *workers += 1,
                Err(err) if *workers == 0 => panic!("cannot start a decoding thread: {err}"),
                Err(_) => break,
            }
        }
    }

    fn submit(&self, job: Job) {
        lock(&self.jobs)
            .send(job)
            .expect("the decoding threads never stop");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    /// The decoder of a reader that decodes on its own thread (`threads` = 1), kept for the
    /// next reader on this thread.
    static INLINE: RefCell<Option<Decoder>> = const { RefCell::new(None) };
}

/// The record batches of one EVTX file; see the module documentation.
pub struct EvtxBatches {
    path: Arc<str>,
    options: EvtxOptions,
    threads: usize,
    /// Whether groups are decoded on the pool's threads (else on the caller's, inline).
    pooled: bool,
    /// Chunks per group at most.
    group_chunks: usize,
    source: ChunkSource,
    stats: StatsHandle,
    /// Where the pool's threads send this reader's batches.
    results: Option<(mpsc::Sender<Done>, Receiver<Done>)>,
    reorder: BTreeMap<u64, GroupOutput>,
    /// The rest of a group's batches (one per kind of event code), to yield next.
    ready: VecDeque<RecordBatch>,
    next_seq: u64,
    next_yield: u64,
    exhausted: bool,
}

/// Memory per group: at most this many chunks (16 MiB of file).
const MAX_GROUP_CHUNKS: u64 = 256;
/// Too few chunks to hand to another thread.
const MIN_GROUP_CHUNKS: u64 = 4;

impl EvtxBatches {
    /// Opens `path`: fails when it cannot be read or is not an EVTX file (bad file header).
    pub fn open(path: impl AsRef<Path>, options: EvtxOptions) -> Result<EvtxBatches, Error> {
        let path = path.as_ref();
        let shown = path.to_string_lossy().into_owned();
        let io_error = |err: std::io::Error| Error::Io {
            path: shown.clone(),
            kind: err.kind(),
            message: err.to_string(),
        };
        let not_evtx = |reason: String| Error::NotEvtx {
            path: shown.clone(),
            reason,
        };
        let mut file = File::open(path).map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let mut magic = [0u8; 8];
        let got = read_up_to(&mut file, &mut magic).map_err(io_error)?;
        if magic[..got] != b"ElfFile\0"[..got] {
            return Err(not_evtx(format!(
                "bad file header magic {:?} (an EVTX file starts with \"ElfFile\\0\")",
                String::from_utf8_lossy(&magic[..got])
            )));
        }
        if len < FILE_HEADER_SIZE {
            return Err(not_evtx(format!(
                "the file is only {len} bytes long, shorter than the {FILE_HEADER_SIZE}-byte file header"
            )));
        }
        let tail = partial_chunk(&mut file, len).map_err(io_error)?;
        file.seek(SeekFrom::Start(0)).map_err(io_error)?;
        let parser = EvtxParser::from_read_seek(file).map_err(|e| not_evtx(chain(&e)))?;
        let chunks = parser.into_chunks();

        let total_chunks = len.saturating_sub(FILE_HEADER_SIZE) / CHUNK_SIZE;
        let threads = match options.threads {
            0 => thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Enough groups for every thread, but not so small that handing them over costs more
        // than decoding them: a small file is decoded on fewer threads, or on the caller's.
        let threads = threads.min(total_chunks.div_ceil(MIN_GROUP_CHUNKS).max(1) as usize);
        let group_chunks = total_chunks
            .div_ceil(threads as u64)
            .clamp(1, MAX_GROUP_CHUNKS) as usize;
        // Even one decoding thread runs beside the caller when there are several groups: the
        // caller works on one batch (writes it, scans it) while the next is decoded.
        let pooled = threads > 1 || total_chunks > group_chunks as u64;
        Ok(EvtxBatches {
            path: shown.as_str().into(),
            options,
            threads,
            pooled,
            group_chunks,
            source: ChunkSource {
                chunks,
                last_number: None,
                tail,
            },
            stats: StatsHandle::default(),
            results: None,
            reorder: BTreeMap::new(),
            ready: VecDeque::new(),
            next_seq: 0,
            next_yield: 0,
            exhausted: false,
        })
    }

    pub fn schema(&self) -> SchemaRef {
        if self.options.layout_form {
            layout_schema()
        } else {
            evtx_schema()
        }
    }

    /// The path, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The statistics so far (final once the iterator has ended).
    pub fn stats(&self) -> EvtxStats {
        self.stats.snapshot()
    }

    /// A handle on the statistics, to read them while the batches are consumed elsewhere.
    pub fn stats_handle(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// Reads the next group of chunks: up to `group_chunks`, fewer once they hold about
    /// `batch_rows` records by their headers.
    fn read_group(&mut self) -> Option<Vec<ChunkInput>> {
        let mut chunks = Vec::new();
        let mut rows = 0usize;
        while chunks.len() < self.group_chunks && rows < self.options.batch_rows.max(1) {
            let Some(chunk) = self.source.next() else {
                break;
            };
            if let ChunkInput::Read(data) = &chunk {
                let h = &data.header;
                let n = h
                    .last_event_record_number
                    .saturating_sub(h.first_event_record_number)
                    .saturating_add(1);
                // A damaged header may claim anything: a chunk holds at most ~2,700 records.
                rows += n.clamp(1, 2_800) as usize;
            }
            chunks.push(chunk);
        }
        (!chunks.is_empty()).then_some(chunks)
    }

    fn in_flight(&self) -> u64 {
        self.next_seq - self.next_yield
    }

    /// Puts every group it can in flight.
    fn fill(&mut self) {
        let max_in_flight = if self.pooled {
            self.threads as u64 * 2
        } else {
            1
        };
        let (fast_path, by_kind) = (self.options.template_fast_path, self.options.by_code_kind);
        let layout_form = self.options.layout_form;
        while !self.exhausted && self.in_flight() < max_in_flight {
            let Some(chunks) = self.read_group() else {
                self.exhausted = true;
                break;
            };
            let seq = self.next_seq;
            self.next_seq += 1;
            if self.pooled {
                let pool = Pool::get();
                if self.results.is_none() {
                    pool.ensure_workers(self.threads);
                    self.results = Some(mpsc::channel());
                }
                let (results, _) = self.results.as_ref().expect("just made");
                pool.submit(Job {
                    seq,
                    chunks,
                    path: Arc::clone(&self.path),
                    fast_path,
                    by_kind,
                    layout_form,
                    results: results.clone(),
                });
            } else {
                let out = INLINE.with(|cell| {
                    let mut decoder = cell.take().unwrap_or_else(Decoder::new);
                    let out =
                        decoder.decode_group(chunks, &self.path, fast_path, by_kind, layout_form);
                    cell.replace(Some(decoder));
                    out
                });
                self.reorder.insert(seq, out);
            }
        }
    }

    fn account(&self, out: &GroupOutput) {
        let mut stats = self.stats.lock();
        stats.chunks += out.chunks;
        stats.skipped += out.errors.len() as u64;
        stats.errors.extend(out.errors.iter().cloned());
        stats.template_records += out.template_records;
        stats.records += out.batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
    }

    fn finish(&mut self) {
        let mut stats = self.stats.lock();
        if stats.finished {
            return;
        }
        if let Some(tail) = self.source.tail.take() {
            stats.skipped += 1;
            stats.errors.push(tail);
        }
        stats.finished = true;
    }
}

impl Iterator for EvtxBatches {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Some(batch);
            }
            self.fill();
            if let Some(out) = self.reorder.remove(&self.next_yield) {
                self.next_yield += 1;
                self.account(&out);
                self.ready.extend(out.batches);
                continue;
            }
            if self.in_flight() == 0 {
                self.finish();
                return None;
            }
            let received = self.results.as_ref().map(|(_, results)| results.recv());
            match received {
                Some(Ok((seq, out))) => {
                    self.reorder.insert(seq, out);
                }
                // Cannot happen: the reader holds a sender of its results channel.
                _ => {
                    self.finish();
                    return None;
                }
            }
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The error for a partial chunk at the end of the file, which the evtx crate does not read
/// (unless it is all zeros: nothing is lost then).
fn partial_chunk(file: &mut File, len: u64) -> std::io::Result<Option<DecodeError>> {
    let full = len.saturating_sub(FILE_HEADER_SIZE) / CHUNK_SIZE;
    let start = chunk_offset(full);
    let partial = len.saturating_sub(start);
    if partial == 0 {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(start))?;
    let mut rest = Vec::with_capacity(partial as usize);
    file.take(partial).read_to_end(&mut rest)?;
    if rest.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    Ok(Some(DecodeError {
        chunk: full,
        offset: start,
        message: format!(
            "incomplete chunk at the end of the file ({partial} of {CHUNK_SIZE} bytes): its records are not read"
        ),
    }))
}
