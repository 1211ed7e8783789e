//! EVTX decoding against the real sample files in `../shared/data` (relative to the project
//! root), checked against the `evtx` crate's own reading of the same files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use callsweep_core::evtx::{EvtxBatches, EvtxOptions, EvtxStats};
use callsweep_core::Error;
use serde_json::{Map, Value};

fn data_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no sample data at {}", dir.display());
        None
    }
}

fn evtx_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "evtx") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn sample(name: &str) -> Option<PathBuf> {
    let dir = data_dir()?;
    evtx_files(&dir)
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy() == name)
}

fn decode(path: &Path, options: EvtxOptions) -> (Vec<RecordBatch>, EvtxStats) {
    let mut batches = EvtxBatches::open(path, options).unwrap();
    let out: Vec<RecordBatch> = batches.by_ref().collect();
    let stats = batches.stats();
    assert!(stats.finished);
    (out, stats)
}

fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// The value of a string or dictionary-of-string column at `row`.
fn string_at(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    if let Some(dict) = array.as_any_dictionary_opt() {
        let key = dict.normalized_keys()[row];
        return Some(dict.values().as_string::<i32>().value(key).to_owned());
    }
    Some(array.as_string::<i32>().value(row).to_owned())
}

fn i64_at(array: &ArrayRef, row: usize) -> Option<i64> {
    (!array.is_null(row)).then(|| array.as_primitive::<Int64Type>().value(row))
}

fn i32_at(array: &ArrayRef, row: usize) -> Option<i32> {
    (!array.is_null(row)).then(|| array.as_primitive::<Int32Type>().value(row))
}

/// What the evtx crate itself reads: (record header number, rendered JSON) for each record, and
/// the number of errors.
fn crate_records(path: &Path) -> (Vec<(u64, Value)>, usize) {
    let mut parser = evtx::EvtxParser::from_path(path).unwrap();
    let mut ok = Vec::new();
    let mut errors = 0;
    for record in parser.records_json_value() {
        match record {
            Ok(r) => ok.push((r.event_record_id, r.data)),
            Err(_) => errors += 1,
        }
    }
    (ok, errors)
}

#[test]
fn every_sample_gives_what_the_evtx_crate_reads() {
    let Some(dir) = data_dir() else { return };
    let files = evtx_files(&dir);
    assert!(!files.is_empty());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        // The crate's own count, with its XML rendering (`records()`), as the issue asks.
        let mut parser = evtx::EvtxParser::from_path(path).unwrap();
        let (mut xml_ok, mut xml_err) = (0usize, 0usize);
        for record in parser.records() {
            match record {
                Ok(_) => xml_ok += 1,
                Err(_) => xml_err += 1,
            }
        }
        let (batches, stats) = decode(path, EvtxOptions::default());
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, xml_ok, "{name}: records");
        assert_eq!(stats.records as usize, rows, "{name}");
        assert!(
            stats.errors.len() >= xml_err,
            "{name}: {} errors reported, the crate has {xml_err}",
            stats.errors.len()
        );
        assert_eq!(stats.skipped as usize, stats.errors.len());
        eprintln!(
            "{name}: {rows} records ({} by template values), {} chunks, {} errors",
            stats.template_records,
            stats.chunks,
            stats.errors.len()
        );
        for batch in &batches {
            assert_eq!(batch.schema(), callsweep_core::evtx::evtx_schema());
            let paths = col(batch, "log.file.path");
            assert_eq!(string_at(paths, 0).unwrap(), path.to_string_lossy());
            let os = col(batch, "host.os.type");
            assert!((0..batch.num_rows()).all(|r| string_at(os, r).as_deref() == Some("windows")));
        }
    }
}

#[test]
fn template_values_and_json_rendering_give_the_same_rows() {
    let Some(dir) = data_dir() else { return };
    for path in evtx_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let fast = decode(&path, EvtxOptions::default());
        let json = decode(
            &path,
            EvtxOptions {
                template_fast_path: false,
                ..EvtxOptions::default()
            },
        );
        assert_eq!(json.1.template_records, 0);
        assert_same_rows(&fast, &json, &name);
    }
}

/// The same rows (and errors) from both ways of reading records.
fn assert_same_rows(
    fast: &(Vec<RecordBatch>, EvtxStats),
    json: &(Vec<RecordBatch>, EvtxStats),
    name: &str,
) {
    assert_eq!(fast.1.errors, json.1.errors, "{name}");
    assert_eq!(fast.0.len(), json.0.len(), "{name}");
    for (a, b) in fast.0.iter().zip(&json.0) {
        for (field, (x, y)) in a
            .schema()
            .fields()
            .iter()
            .zip(a.columns().iter().zip(b.columns()))
        {
            if field.name() == "winlog.event_data_other" {
                // The same JSON object; the text may escape differently, but for UserData,
                // which both ways keep as the crate renders it.
                for row in 0..a.num_rows() {
                    let (fast_text, json_text) = (string_at(x, row), string_at(y, row));
                    if json_text
                        .as_deref()
                        .is_some_and(|t| t.contains("\"UserData\":"))
                    {
                        assert_eq!(fast_text, json_text, "{name} row {row}: UserData");
                    }
                    let parse =
                        |v: Option<String>| v.map(|s| serde_json::from_str::<Value>(&s).unwrap());
                    assert_eq!(
                        parse(string_at(x, row)),
                        parse(string_at(y, row)),
                        "{name} row {row}"
                    );
                }
            } else if x.to_data() != y.to_data() {
                let row = (0..a.num_rows())
                    .find(|&r| x.slice(r, 1).to_data() != y.slice(r, 1).to_data())
                    .unwrap_or(0);
                panic!(
                    "{name}: column {} differs first at row {row} (record {:?}): {:?} vs {:?}",
                    field.name(),
                    i64_at(col(a, "callsweep.evtx.record_number"), row),
                    x.slice(row, 1),
                    y.slice(row, 1)
                );
            }
        }
    }
}

/// Everything of the crate's JSON rendering of EventData / UserData, from a row: the Sysmon
/// columns (under their original names) plus the JSON of the others.
fn event_values(batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut values = Map::new();
    if let Some(other) = string_at(col(batch, "winlog.event_data_other"), row) {
        let Value::Object(other) = serde_json::from_str(&other).unwrap() else {
            panic!("not an object: {other}")
        };
        values.extend(other);
    }
    let renames = [
        ("process.executable", "SourceImage"),
        ("process.entity_id", "SourceProcessGUID"),
        ("process.pid", "SourceProcessId"),
        ("process.thread.id", "SourceThreadId"),
    ];
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let name = field.name();
        let original = if let Some(n) = name.strip_prefix("winlog.event_data.") {
            n
        } else if let Some((_, n)) = renames.iter().find(|(c, _)| c == name) {
            n
        } else {
            continue;
        };
        let array = batch.column(i);
        let value = match field.data_type() {
            arrow_schema::DataType::Int64 => i64_at(array, row).map(Value::from),
            _ => string_at(array, row).map(Value::from),
        };
        if let Some(v) = value {
            values.insert(original.to_owned(), v);
        }
    }
    values
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` of microseconds since the epoch.
fn format_micros(ts: i64) -> String {
    let (days, rest) = (ts.div_euclid(86_400_000_000), ts.rem_euclid(86_400_000_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let secs = rest / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1_000_000
    )
}

/// A JSON scalar as the text a string column holds.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[test]
fn field_values_equal_the_crates_json_rendering() {
    let Some(dir) = data_dir() else { return };
    let mut checked = 0;
    for path in evtx_files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (reference, _) = crate_records(&path);
        let (batches, _) = decode(&path, EvtxOptions::default());
        let rows: Vec<(&RecordBatch, usize)> = batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(move |r| (b, r)))
            .collect();
        assert_eq!(rows.len(), reference.len(), "{name}");
        for ((batch, row), (number, json)) in rows.into_iter().zip(&reference) {
            let at = format!("{name} record {number}");
            assert_eq!(
                i64_at(col(batch, "callsweep.evtx.record_number"), row),
                Some(*number as i64),
                "{at}"
            );
            let system = &json["Event"]["System"];
            let event_id = match &system["EventID"] {
                Value::Object(o) => o["#text"].as_i64(),
                v => v.as_i64(),
            };
            assert_eq!(
                i32_at(col(batch, "winlog.event_id"), row).map(i64::from),
                event_id,
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "event.code"), row),
                event_id.map(|e| e.to_string()),
                "{at}"
            );
            assert_eq!(
                i64_at(col(batch, "winlog.record_id"), row),
                system["EventRecordID"].as_i64(),
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "host.name"), row),
                as_text(&system["Computer"]),
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "winlog.channel"), row),
                as_text(&system["Channel"]),
                "{at}"
            );
            let provider = &system["Provider"]["#attributes"];
            assert_eq!(
                string_at(col(batch, "winlog.provider_name"), row),
                as_text(&provider["Name"]),
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "winlog.provider_guid"), row),
                as_text(&provider["Guid"]),
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "winlog.keywords"), row),
                as_text(&system["Keywords"]),
                "{at}"
            );
            for (column, key) in [
                ("winlog.level", "Level"),
                ("winlog.task", "Task"),
                ("winlog.opcode", "Opcode"),
                ("winlog.version", "Version"),
            ] {
                assert_eq!(
                    i32_at(col(batch, column), row).map(i64::from),
                    system[key].as_i64(),
                    "{at}: {key}"
                );
            }
            let execution = &system["Execution"]["#attributes"];
            assert_eq!(
                i64_at(col(batch, "winlog.process.pid"), row),
                execution["ProcessID"].as_i64(),
                "{at}"
            );
            assert_eq!(
                i64_at(col(batch, "winlog.process.thread.id"), row),
                execution["ThreadID"].as_i64(),
                "{at}"
            );
            assert_eq!(
                string_at(col(batch, "winlog.user.identifier"), row),
                as_text(&system["Security"]["#attributes"]["UserID"]),
                "{at}"
            );
            // Without a SystemTime (a damaged record), the record header's time stands in.
            if let Some(time) = system["TimeCreated"]["#attributes"]["SystemTime"].as_str() {
                let ts = col(batch, "@timestamp").as_primitive::<TimestampMicrosecondType>();
                assert_eq!(format_micros(ts.value(row)), time[..26], "{at}");
            }
            assert!(!col(batch, "@timestamp").is_null(row), "{at}");

            // EventData / UserData: every value is in a column or in the JSON of the others.
            let ours = event_values(batch, row);
            let sysmon = provider["Name"] == "Microsoft-Windows-Sysmon";
            let mut theirs = Map::new();
            if let Some(Value::Object(data)) = json["Event"].get("EventData") {
                for (k, v) in data {
                    if sysmon && matches!(v, Value::String(s) if s.is_empty() || s == "-") {
                        continue; // dropped, as the ingest pipeline drops them
                    }
                    if sysmon && v.is_null() {
                        continue;
                    }
                    theirs.insert(k.clone(), v.clone());
                }
            }
            if let Some(user) = json["Event"].get("UserData").filter(|v| !v.is_null()) {
                theirs.insert("UserData".to_owned(), user.clone());
            }
            for (k, v) in ours.iter().filter(|(k, _)| !k.starts_with("System.")) {
                let expected = theirs
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}: {k} = {v} is not in the crate's JSON"));
                if sysmon && !v.is_object() && !v.is_array() {
                    // Sysmon columns are text (pid and thread id numbers).
                    assert_eq!(as_text(v), as_text(expected), "{at}: {k}");
                } else {
                    assert_eq!(v, expected, "{at}: {k}");
                }
            }
            for k in theirs.keys() {
                assert!(ours.contains_key(k), "{at}: {k} lost");
            }
            checked += 1;
        }
    }
    eprintln!("{checked} records checked against the crate's JSON");
}

#[test]
fn sysmon_process_access_record() {
    let Some(path) = sample("Sysmon_10_Evasion_Suspicious_NtOpenProcess_CallTrace.evtx") else {
        return;
    };
    let (batches, stats) = decode(&path, EvtxOptions::default());
    assert_eq!(stats.records, 1);
    assert!(stats.errors.is_empty());
    let b = &batches[0];
    assert_eq!(i64_at(col(b, "winlog.record_id"), 0), Some(303867));
    assert_eq!(string_at(col(b, "event.code"), 0).as_deref(), Some("10"));
    assert_eq!(i32_at(col(b, "winlog.event_id"), 0), Some(10));
    assert!(string_at(col(b, "winlog.event_data.CallTrace"), 0)
        .unwrap()
        .starts_with("UNKNOWN(000001F3C35A0014)"));
    assert_eq!(
        string_at(col(b, "process.executable"), 0).as_deref(),
        Some(r"C:\Users\Public\za3bollo.exe")
    );
    assert_eq!(i64_at(col(b, "process.pid"), 0), Some(1972));
    assert_eq!(i64_at(col(b, "process.thread.id"), 0), Some(7192));
    assert_eq!(
        string_at(col(b, "process.entity_id"), 0).as_deref(),
        Some("{747f3d96-a591-5efb-0000-00109fe4cc01}")
    );
    assert_eq!(
        string_at(col(b, "winlog.event_data.TargetImage"), 0).as_deref(),
        Some(r"C:\Windows\system32\notepad.exe")
    );
    assert_eq!(
        string_at(col(b, "winlog.event_data.GrantedAccess"), 0).as_deref(),
        Some("0x1fffff")
    );
    assert_eq!(
        string_at(col(b, "host.name"), 0).as_deref(),
        Some("MSEDGEWIN10")
    );
    assert_eq!(
        string_at(col(b, "host.os.type"), 0).as_deref(),
        Some("windows")
    );
    assert_eq!(
        string_at(col(b, "winlog.channel"), 0).as_deref(),
        Some("Microsoft-Windows-Sysmon/Operational")
    );
    let category = col(b, "event.category").as_list::<i32>().value(0);
    assert_eq!(
        category.as_string::<i32>().iter().collect::<Vec<_>>(),
        [Some("process")]
    );
    // 2020-06-30T20:50:25.5467139Z
    let ts = col(b, "@timestamp")
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    assert_eq!(ts, 1_593_550_225_546_713);
    assert!(col(b, "winlog.event_data_other").is_null(0));
    assert_eq!(i32_at(col(b, "callsweep.evtx.chunk"), 0), Some(0));
    assert_eq!(i64_at(col(b, "callsweep.evtx.record_number"), 0), Some(1));
}

#[test]
fn capi2_event_10_is_not_process_access() {
    let Some(path) =
        sample("E_Windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx")
    else {
        return;
    };
    let (batches, _) = decode(&path, EvtxOptions::default());
    let mut seen = 0;
    for b in &batches {
        for row in 0..b.num_rows() {
            if string_at(col(b, "event.code"), row).as_deref() == Some("10") {
                seen += 1;
                assert!(col(b, "event.category").is_null(row));
                assert!(col(b, "winlog.event_data.CallTrace").is_null(row));
                assert!(col(b, "process.executable").is_null(row));
                // Its UserData is kept.
                let other = string_at(col(b, "winlog.event_data_other"), row).unwrap();
                assert!(other.starts_with(r#"{"UserData":"#), "{other}");
            }
        }
    }
    assert_eq!(seen, 42);
}

#[test]
fn a_bad_chunk_is_passed_over() {
    let Some(path) = sample("sample_with_a_bad_chunk_magic.evtx") else {
        return;
    };
    let (batches, stats) = decode(&path, EvtxOptions::default());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert!(rows >= 270, "{rows}");
    assert!(!stats.errors.is_empty());
    // The log has wrapped around: the crate reads it from its oldest chunk (8) on, and the
    // records of the chunks after each bad one (10, 6) are kept.
    let mut chunks: Vec<i32> = batches
        .iter()
        .flat_map(|b| {
            col(b, "callsweep.evtx.chunk")
                .as_primitive::<Int32Type>()
                .values()
                .to_vec()
        })
        .collect();
    chunks.dedup();
    assert_eq!(chunks, [8, 9, 0, 7]);
    let bad: Vec<u64> = stats.errors.iter().map(|e| e.chunk).collect();
    assert_eq!(bad, [10, 6, 7]);
    for e in &stats.errors {
        assert!(
            e.offset >= 4096 + e.chunk * 65536 && e.offset < 4096 + (e.chunk + 1) * 65536,
            "{e:?}"
        );
        assert!(!e.message.is_empty());
    }
}

#[test]
fn threads_and_batch_sizes_do_not_change_the_rows() {
    let Some(path) = sample("LM_5145_Remote_FileCopy.evtx") else {
        return;
    };
    let one = decode(
        &path,
        EvtxOptions {
            threads: 1,
            ..EvtxOptions::default()
        },
    );
    for (threads, batch_rows) in [(2, 65_536), (2, 50), (3, 1), (1, 100)] {
        let other = decode(
            &path,
            EvtxOptions {
                threads,
                batch_rows,
                ..EvtxOptions::default()
            },
        );
        assert_eq!(one.1.records, other.1.records);
        assert_eq!(one.1.errors, other.1.errors);
        let ids = |batches: &[RecordBatch]| -> Vec<i64> {
            batches
                .iter()
                .flat_map(|b| {
                    col(b, "winlog.record_id")
                        .as_primitive::<Int64Type>()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        assert_eq!(
            ids(&one.0),
            ids(&other.0),
            "threads {threads}, batch_rows {batch_rows}"
        );
        if batch_rows < 1000 {
            assert!(other.0.len() > 1);
        }
    }
}

static TEMP: AtomicUsize = AtomicUsize::new(0);

fn temp_file(bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "callsweep-evtx-test-{}-{}.evtx",
        std::process::id(),
        TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_file_that_is_not_evtx_is_a_clean_error() {
    let path = temp_file(b"this is not an event log, just some text that is long enough");
    let err = EvtxBatches::open(&path, EvtxOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, Error::NotEvtx { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&*path.to_string_lossy()) && message.contains("magic"),
        "{message}"
    );

    let empty = temp_file(b"");
    assert!(matches!(
        EvtxBatches::open(&empty, EvtxOptions::default()),
        Err(Error::NotEvtx { .. })
    ));
    let short = temp_file(b"ElfFile\0\x01\x02");
    let err = EvtxBatches::open(&short, EvtxOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("only 10 bytes"), "{err}");

    let missing = std::env::temp_dir().join("callsweep-no-such-file.evtx");
    let err = EvtxBatches::open(&missing, EvtxOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            Error::Io {
                kind: std::io::ErrorKind::NotFound,
                ..
            }
        ),
        "{err:?}"
    );
    for p in [path, empty, short] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_truncated_file_keeps_its_complete_chunks() {
    let Some(path) = sample("LM_5145_Remote_FileCopy.evtx") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap();
    let (full, _) = decode(&path, EvtxOptions::default());
    let complete = 3u64;
    let cut = 4096 + complete as usize * 65536 + 30_000; // in the middle of chunk 3
    let truncated = temp_file(&bytes[..cut]);
    let (batches, stats) = decode(&truncated, EvtxOptions::default());
    let ids = |batches: &[RecordBatch], max_chunk: u64| -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let chunks = col(b, "callsweep.evtx.chunk").as_primitive::<Int32Type>();
                let ids = col(b, "winlog.record_id").as_primitive::<Int64Type>();
                (0..b.num_rows())
                    .filter(|&r| (chunks.value(r) as u64) < max_chunk)
                    .map(|r| ids.value(r))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let expected = ids(&full, complete);
    assert!(!expected.is_empty());
    assert_eq!(ids(&batches, u64::MAX), expected);
    assert_eq!(stats.chunks, complete);
    let tail = stats.errors.last().expect("the partial chunk is reported");
    assert_eq!(
        (tail.chunk, tail.offset),
        (complete, 4096 + complete * 65536)
    );
    assert!(
        tail.message.contains("incomplete chunk"),
        "{}",
        tail.message
    );

    // Cut inside the file header: not an EVTX file any more.
    let header_only = temp_file(&bytes[..1000]);
    assert!(matches!(
        EvtxBatches::open(&header_only, EvtxOptions::default()),
        Err(Error::NotEvtx { .. })
    ));
    let _ = std::fs::remove_file(truncated);
    let _ = std::fs::remove_file(header_only);
}

#[test]
fn a_damaged_record_is_passed_over_and_the_rest_kept() {
    let Some(path) = sample("LM_5145_Remote_FileCopy.evtx") else {
        return;
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let (full, _) = decode(&path, EvtxOptions::default());
    let total: usize = full.iter().map(RecordBatch::num_rows).sum();
    // Offsets of the first records of a chunk, from their sizes.
    let records = |bytes: &[u8], chunk: usize| -> Vec<usize> {
        let mut at = vec![4096 + chunk * 65536 + 512];
        for _ in 0..8 {
            let last = *at.last().unwrap();
            let size = u32::from_le_bytes(bytes[last + 4..last + 8].try_into().unwrap());
            at.push(last + size as usize);
        }
        at
    };
    // An invalid BinXML token in the 6th record of chunk 1 (a fragment header, then a
    // template instance token: 0x0c)...
    let broken = records(&bytes, 1)[5];
    assert_eq!((bytes[broken + 24], bytes[broken + 28]), (0x0f, 0x0c));
    bytes[broken + 28] = 0xff;
    // ... and a bad record header magic in the 2nd record of chunk 2.
    let second = records(&bytes, 2)[1];
    bytes[second] = b'X';
    let damaged = temp_file(&bytes);
    let (batches, stats) = decode(&damaged, EvtxOptions::default());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows + 2, total, "{:?}", stats.errors);
    assert_eq!(stats.errors.len(), 2, "{:?}", stats.errors);
    assert_eq!(stats.errors[0].chunk, 1);
    assert_eq!(stats.errors[0].offset, broken as u64);
    assert_eq!(stats.errors[1].chunk, 2);
    assert_eq!(stats.errors[1].offset, second as u64);
    let _ = std::fs::remove_file(damaged);
}

/// A deterministic pseudo-random sequence (no dependency for it).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Rewrites the CRC32s of every chunk, as if Windows had written the bytes as they are.
fn fix_checksums(bytes: &mut [u8]) {
    for chunk in bytes[4096..].chunks_exact_mut(65536) {
        if !chunk.starts_with(b"ElfChnk\0") {
            continue;
        }
        let free = u32::from_le_bytes(chunk[48..52].try_into().unwrap()) as usize;
        if (512..=65536).contains(&free) {
            let crc = evtx::checksum_ieee(&chunk[512..free]);
            chunk[52..56].copy_from_slice(&crc.to_le_bytes());
        }
        let mut header = chunk[..120].to_vec();
        header.extend_from_slice(&chunk[128..512]);
        let crc = evtx::checksum_ieee(&header);
        chunk[124..128].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Damaged copies of real files (bytes garbled at random in the records, with the CRC32s left
/// stale, or rewritten so that the chunks look intact and are walked without the crate's
/// record iterator): decoding never panics, keeps exactly the records the evtx crate reads,
/// reports at least the errors it reports, and reads the same rows with and without the
/// template fast path. (Run once with 10,000 variants, other seeds and up to 40 garbled bytes
/// each: no difference.)
#[test]
fn garbled_files_give_what_the_evtx_crate_reads() {
    let names = [
        "LM_5145_Remote_FileCopy.evtx",
        "persistence_sysmon_11_13_1_shime_appfix.evtx",
        "E_Windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx",
        "discovery_meterpreter_ps_cmd_process_listing_sysmon_10.evtx",
        "2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx",
    ];
    let mut rng = Lcg(0x5eed);
    let (mut damaged, mut walked) = (0, 0);
    for name in names {
        let Some(path) = sample(name) else { return };
        let original = std::fs::read(&path).unwrap();
        // The chunks in use, and where their records end.
        let used: Vec<(usize, usize)> = original[4096..]
            .chunks_exact(65536)
            .enumerate()
            .filter(|(_, c)| c.starts_with(b"ElfChnk\0"))
            .map(|(i, c)| {
                (
                    i,
                    u32::from_le_bytes(c[48..52].try_into().unwrap()) as usize,
                )
            })
            .collect();
        for variant in 0..30 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.next() % 6 {
                let (chunk, free) = used[(rng.next() as usize) % used.len()];
                let at = 4096 + chunk * 65536 + 512 + (rng.next() as usize) % (free - 512);
                bytes[at] = rng.next() as u8;
            }
            if variant % 2 == 1 {
                fix_checksums(&mut bytes);
            }
            let file = temp_file(&bytes);
            let mut parser = evtx::EvtxParser::from_path(&file).unwrap();
            let (mut ok, mut err) = (0usize, 0usize);
            for record in parser.records() {
                match record {
                    Ok(_) => ok += 1,
                    Err(_) => err += 1,
                }
            }
            let fast = decode(&file, EvtxOptions::default());
            let rows: usize = fast.0.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(rows, ok, "{name} variant {variant}: {:?}", fast.1.errors);
            let options = EvtxOptions {
                template_fast_path: false,
                ..EvtxOptions::default()
            };
            let json = decode(&file, options);
            assert_same_rows(&fast, &json, &format!("{name} variant {variant}"));
            let stats = fast.1;
            assert!(stats.errors.len() >= err, "{name} variant {variant}");
            damaged += usize::from(err > 0);
            walked += usize::from(variant % 2 == 1 && stats.template_records > 0);
            let _ = std::fs::remove_file(file);
        }
    }
    eprintln!("{damaged} variants with records the crate cannot read, {walked} walked as intact");
    assert!(damaged > 10 && walked > 10);
}
