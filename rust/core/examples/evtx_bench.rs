//! Throughput of the EVTX decoder next to the evtx crate's own JSON rendering, on the same
//! files in the same run (release build only: `cargo run --release --example evtx_bench`).
//!
//! ```text
//! evtx_bench [--rounds N] [--threads T] [--only NAME] [--layout] FILE...
//!                                                    time the contenders, A B A B ...
//!                                                    (`--layout`: callsweep's batches as
//!                                                    `callsweep convert` asks for them)
//! evtx_bench --make-big OUT --chunks N FILE...       write an EVTX file of N chunks copied
//!                                                    round-robin from FILE... (a large input)
//! ```
//!
//! Contenders, each over every file once per round:
//! - `callsweep T`: `EvtxBatches` (Arrow batches) on T threads, and on 1 thread;
//! - `callsweep-json 1`: the same without the template fast path (every record through the
//!   crate's JSON rendering);
//! - `evtx iter 1`: only iterating the records (the crate parses each), the floor of anything
//!   built on the crate's public record API;
//! - `evtx json 1`: the crate's `EvtxParser::records_json_bytes` (one thread: the crate is
//!   built without rayon here);
//! - `evtx json T`: `EvtxRecord::into_json_bytes` for every record, chunks spread over T threads
//!   (what `evtx_dump -o jsonl` does, without writing the output).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use callsweep_core::evtx::{EvtxBatches, EvtxOptions};
use evtx::{EvtxParser, ParserSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut rounds, mut threads) = (5usize, 0usize);
    let (mut make_big, mut chunks) = (None::<PathBuf>, 0usize);
    let mut only = None::<String>;
    // `--layout`: batches as `callsweep convert` asks for them (by code kind, layout form).
    let mut layout = false;
    let mut files = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => rounds = args.next().unwrap().parse().unwrap(),
            "--threads" => threads = args.next().unwrap().parse().unwrap(),
            "--make-big" => make_big = Some(args.next().unwrap().into()),
            "--chunks" => chunks = args.next().unwrap().parse().unwrap(),
            "--only" => only = args.next(),
            "--layout" => layout = true,
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if let Some(out) = make_big {
        write_big(&out, chunks, &files);
        return;
    }
    if threads == 0 {
        threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!(
        "{} files, {:.1} MB, {rounds} rounds, {threads} threads (page cache warm after round 1)",
        files.len(),
        bytes as f64 / 1e6
    );

    type Contender = (String, Box<dyn Fn(&[PathBuf]) -> usize>);
    let contenders: Vec<Contender> = vec![
        (
            format!("callsweep {threads}"),
            Box::new(move |f: &[PathBuf]| ours(f, threads, layout)),
        ),
        (
            "callsweep 1".into(),
            Box::new(move |f: &[PathBuf]| ours(f, 1, layout)),
        ),
        (
            "callsweep-json 1".into(),
            Box::new(|f: &[PathBuf]| ours_json(f)),
        ),
        ("evtx iter 1".into(), Box::new(crate_iter)),
        ("evtx json 1".into(), Box::new(crate_json)),
        (
            format!("evtx json {threads}"),
            Box::new(move |f: &[PathBuf]| crate_json_threads(f, threads)),
        ),
    ];
    let contenders: Vec<Contender> = contenders
        .into_iter()
        .filter(|(name, _)| only.as_ref().is_none_or(|o| name == o))
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut records = vec![0usize; contenders.len()];
    for _ in 0..rounds {
        for (i, (_, run)) in contenders.iter().enumerate() {
            let start = Instant::now();
            records[i] = run(&files);
            times[i].push(start.elapsed().as_secs_f64());
        }
    }
    let base = median(&times[0]);
    println!(
        "{:<14} {:>9} {:>9} {:>13} {:>9} {:>7}",
        "contender", "records", "median s", "records/s", "MB/s", "ratio"
    );
    for (i, (name, _)) in contenders.iter().enumerate() {
        let (med, min, max) = (median(&times[i]), min(&times[i]), max(&times[i]));
        println!(
            "{name:<14} {:>9} {med:>9.3} {:>13.0} {:>9.1} {:>7.2}   (min {min:.3}, max {max:.3})",
            records[i],
            records[i] as f64 / med,
            bytes as f64 / med / 1e6,
            med / base,
        );
    }
}

/// `layout`: by code kind, in the layout's form (`--layout`).
fn ours(files: &[PathBuf], threads: usize, layout: bool) -> usize {
    let mut rows = 0;
    for f in files {
        let options = EvtxOptions {
            threads,
            by_code_kind: layout,
            layout_form: layout,
            ..EvtxOptions::default()
        };
        let mut batches = EvtxBatches::open(f, options).unwrap();
        rows += batches.by_ref().map(|b| b.num_rows()).sum::<usize>();
    }
    rows
}

/// `callsweep 1` without the template fast path: every record through the crate's JSON.
fn ours_json(files: &[PathBuf]) -> usize {
    let mut rows = 0;
    for f in files {
        let options = EvtxOptions {
            threads: 1,
            template_fast_path: false,
            ..EvtxOptions::default()
        };
        let mut batches = EvtxBatches::open(f, options).unwrap();
        rows += batches.by_ref().map(|b| b.num_rows()).sum::<usize>();
    }
    rows
}

/// The floor of anything on the crate's public record API: iterating the records (the crate
/// parses each one), rendering nothing.
fn crate_iter(files: &[PathBuf]) -> usize {
    let mut n = 0;
    let settings = Arc::new(ParserSettings::new().indent(false));
    for f in files {
        for chunk in EvtxParser::from_path(f).unwrap().into_chunks() {
            let Ok(mut data) = chunk else { continue };
            let Ok(mut chunk) = data.parse(Arc::clone(&settings)) else {
                continue;
            };
            n += chunk.iter().flatten().map(std::hint::black_box).count();
        }
    }
    n
}

fn crate_json(files: &[PathBuf]) -> usize {
    let mut n = 0;
    for f in files {
        let mut parser = EvtxParser::from_path(f)
            .unwrap()
            .with_configuration(ParserSettings::new().indent(false));
        for record in parser.records_json_bytes().flatten() {
            std::hint::black_box(&record.data);
            n += 1;
        }
    }
    n
}

fn crate_json_threads(files: &[PathBuf], threads: usize) -> usize {
    let total = AtomicUsize::new(0);
    for f in files {
        let chunks = Mutex::new(EvtxParser::from_path(f).unwrap().into_chunks());
        let settings = Arc::new(ParserSettings::new().indent(false));
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let next = chunks.lock().unwrap().next();
                    let Some(chunk) = next else { break };
                    let Ok(mut data) = chunk else { continue };
                    let Ok(mut chunk) = data.parse(Arc::clone(&settings)) else {
                        continue;
                    };
                    for record in chunk.iter().flatten() {
                        if let Ok(json) = record.into_json_bytes() {
                            std::hint::black_box(&json.data);
                            total.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
    }
    total.into_inner()
}

/// An EVTX file of `chunks` chunks, copied round-robin from the valid chunks of `files`
/// (chunks are self-contained: their strings and templates are theirs), behind the first
/// file's header.
fn write_big(out: &PathBuf, chunks: usize, files: &[PathBuf]) {
    let mut header = None;
    let mut pool = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        header.get_or_insert_with(|| bytes[..4096].to_vec());
        for chunk in bytes[4096..].chunks_exact(65536) {
            if chunk.starts_with(b"ElfChnk\0") {
                pool.push(chunk.to_vec());
            }
        }
    }
    let mut data = header.expect("at least one file");
    for i in 0..chunks {
        data.extend_from_slice(&pool[i % pool.len()]);
    }
    std::fs::write(out, &data).unwrap();
    println!(
        "{}: {} chunks, {:.1} MB",
        out.display(),
        chunks,
        data.len() as f64 / 1e6
    );
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}
