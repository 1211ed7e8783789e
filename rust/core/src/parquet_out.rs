//! Record batches written to a Parquet file, row groups encoded on threads of their own.
//!
//! pyarrow's writer encodes a file's row groups one after another, on the thread that hands
//! them over; after the EVTX decoder's last batch that is all that is left to do, with a core
//! idle. Here each row group handed over is encoded by the `parquet` crate's column writers
//! on a thread of its own while the caller goes on, at most `threads` at a time, and the
//! encoded row groups are appended to the file in the order they came. The options are those
//! `callsweep.layout` gives pyarrow: zstd (every column, or those named), dictionaries for the
//! columns named, statistics per page and per column chunk (values not truncated), the Arrow
//! schema and its metadata in the file's key-value metadata.

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use crate::Error;

/// Which columns (by top-level field name) are written how.
#[derive(Debug, Clone, Default)]
pub struct ParquetOptions {
    /// Dictionary-encoded columns; the others are written plain.
    pub dictionary: Vec<String>,
    /// zstd-compressed columns; None: every column.
    pub compressed: Option<Vec<String>>,
}

/// A Parquet file being written.
pub struct ParquetOut {
    writer: SerializedFileWriter<BufWriter<File>>,
    factory: Arc<ArrowRowGroupWriterFactory>,
    schema: SchemaRef,
    /// Row groups handed over and being encoded, oldest first.
    pending: VecDeque<JoinHandle<parquet::errors::Result<Vec<ArrowColumnChunk>>>>,
    groups: usize,
    threads: usize,
    path: String,
}

/// How much output is buffered before a write: a few writes per row group.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

impl ParquetOut {
    /// Creates (or truncates) `path` for batches of `schema`; up to `threads` row groups are
    /// encoded at a time.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        options: &ParquetOptions,
        threads: usize,
    ) -> Result<ParquetOut, Error> {
        let name = path.display().to_string();
        let failed = |message: String| write_error(&name, message);
        // Lists' values named `element`, as the Parquet format prescribes and pyarrow writes.
        let descriptor = ArrowSchemaConverter::new()
            .with_coerce_types(true)
            .convert(&schema)
            .map_err(|e| failed(e.to_string()))?;
        let props = properties(&descriptor, options, &schema).map_err(failed)?;
        let file = File::create(path).map_err(|e| failed(e.to_string()))?;
        let sink = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let writer = SerializedFileWriter::new(sink, descriptor.root_schema_ptr(), Arc::new(props))
            .map_err(|e| failed(e.to_string()))?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, Arc::clone(&schema));
        Ok(ParquetOut {
            writer,
            factory: Arc::new(factory),
            schema,
            pending: VecDeque::new(),
            groups: 0,
            threads: threads.max(1),
            path: name,
        })
    }

    /// Writes `batches` (of the file's schema) as row groups of `rows` rows, the last one
    /// shorter, as pyarrow's `write_table(..., row_group_size=rows)` does. Each row group is
    /// encoded on a thread of its own; this returns once the last is handed over, after
    /// appending those encoded beyond `threads` at a time.
    pub fn write(&mut self, batches: &[RecordBatch], rows: usize) -> Result<(), Error> {
        if let Some(bad) = batches
            .iter()
            .find(|b| b.schema().fields() != self.schema.fields())
        {
            return Err(self.failed(format!(
                "a batch of another schema ({}) than the file's ({})",
                bad.schema(),
                self.schema
            )));
        }
        for group in row_groups(batches, rows.max(1)) {
            while self.pending.len() >= self.threads {
                self.append_oldest()?;
            }
            let (factory, schema) = (Arc::clone(&self.factory), Arc::clone(&self.schema));
            let index = self.groups + self.pending.len();
            self.pending.push_back(std::thread::spawn(move || {
                encode(&factory, &schema, index, &group)
            }));
        }
        Ok(())
    }

    /// Appends every row group still being encoded, writes the footer and flushes the file.
    pub fn close(mut self) -> Result<(), Error> {
        while !self.pending.is_empty() {
            self.append_oldest()?;
        }
        let path = self.path.clone();
        let failed = |message: String| write_error(&path, message);
        let sink = self
            .writer
            .into_inner()
            .map_err(|e| failed(e.to_string()))?;
        sink.into_inner()
            .map_err(|e| failed(e.error().to_string()))?;
        Ok(())
    }

    fn append_oldest(&mut self) -> Result<(), Error> {
        let Some(encoding) = self.pending.pop_front() else {
            return Ok(());
        };
        let chunks = encoding
            .join()
            .map_err(|_| self.failed("the encoding of a row group panicked".to_owned()))?
            .map_err(|e| self.failed(e.to_string()))?;
        let appended = (|| {
            let mut group = self.writer.next_row_group()?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut group)?;
            }
            group.close().map(|_| ())
        })();
        appended.map_err(|e| self.failed(e.to_string()))?;
        self.groups += 1;
        Ok(())
    }

    fn failed(&self, message: String) -> Error {
        write_error(&self.path, message)
    }
}

fn write_error(path: &str, message: String) -> Error {
    Error::Write {
        path: path.to_owned(),
        message,
    }
}

/// Row group `index` encoded: every column's pages, compressed, with their statistics (its
/// errors are given the file's name where it is appended, `append_oldest`).
fn encode(
    factory: &ArrowRowGroupWriterFactory,
    schema: &SchemaRef,
    index: usize,
    batches: &[RecordBatch],
) -> parquet::errors::Result<Vec<ArrowColumnChunk>> {
    let mut writers = factory.create_column_writers(index)?;
    for batch in batches {
        let mut leaves = Vec::with_capacity(writers.len());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        for (writer, leaf) in writers.iter_mut().zip(&leaves) {
            writer.write(leaf)?;
        }
    }
    writers.into_iter().map(|w| w.close()).collect()
}

/// `batches` cut into row groups of `rows` rows (slices: nothing is copied); no empty group.
fn row_groups(batches: &[RecordBatch], rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups = Vec::new();
    let mut current = Vec::new();
    let mut held = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (rows - held).min(batch.num_rows() - offset);
            current.push(batch.slice(offset, take));
            held += take;
            offset += take;
            if held == rows {
                groups.push(std::mem::take(&mut current));
                held = 0;
            }
        }
    }
    if held > 0 {
        groups.push(current);
    }
    groups
}

fn properties(
    descriptor: &SchemaDescriptor,
    options: &ParquetOptions,
    schema: &SchemaRef,
) -> Result<WriterProperties, String> {
    let zstd = Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| e.to_string())?);
    let all = if options.compressed.is_some() {
        Compression::UNCOMPRESSED
    } else {
        zstd
    };
    // The schema's metadata as the file's key-value metadata, as pyarrow writes it (callsweep
    // keeps the input's fingerprint there); the encoded Arrow schema is added below.
    let metadata: Vec<KeyValue> = schema
        .metadata()
        .iter()
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
        .collect();
    let mut builder = WriterProperties::builder()
        .set_dictionary_enabled(false)
        .set_compression(all)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(None)
        .set_max_row_group_row_count(None)
        .set_coerce_types(true)
        .set_key_value_metadata((!metadata.is_empty()).then_some(metadata));
    for column in descriptor.columns() {
        let top = &column.path().parts()[0];
        if options.dictionary.iter().any(|d| d == top) {
            builder = builder.set_column_dictionary_enabled(column.path().clone(), true);
        }
        if let Some(compressed) = &options.compressed {
            if compressed.iter().any(|c| c == top) {
                builder = builder.set_column_compression(column.path().clone(), zstd);
            }
        }
    }
    let mut props = builder.build();
    add_encoded_arrow_schema_to_metadata(schema, &mut props);
    Ok(props)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use std::collections::HashMap;

    fn schema() -> SchemaRef {
        let item = Field::new("item", DataType::Utf8, true);
        let metadata = HashMap::from([("callsweep.source".to_owned(), "fingerprint".to_owned())]);
        Arc::new(
            Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("image", DataType::Utf8, true),
                Field::new("event.category", DataType::List(Arc::new(item)), true),
            ])
            .with_metadata(metadata),
        )
    }

    fn batch(first: i64, rows: usize) -> RecordBatch {
        let ids = Int64Array::from_iter_values((0..rows as i64).map(|i| first + i));
        let images = StringArray::from_iter(
            (0..rows).map(|i| (i % 5 != 4).then(|| format!("C:\\Windows\\image{}.exe", i % 3))),
        );
        let mut lists = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            if i % 7 == 6 {
                lists.append_null();
            } else {
                lists.append_value([Some("process")]);
            }
        }
        let columns: Vec<ArrayRef> =
            vec![Arc::new(ids), Arc::new(images), Arc::new(lists.finish())];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    #[test]
    fn row_groups_are_cut_across_batches_without_an_empty_one() {
        let batches = [batch(0, 5), batch(5, 0), batch(5, 8)];
        let sizes: Vec<Vec<usize>> = row_groups(&batches, 4)
            .iter()
            .map(|g| g.iter().map(RecordBatch::num_rows).collect())
            .collect();
        assert_eq!(sizes, vec![vec![4], vec![1, 3], vec![4], vec![1]]);
        assert!(row_groups(&[batch(0, 0)], 4).is_empty());
        assert_eq!(row_groups(&[batch(0, 8)], 4).len(), 2);
    }

    #[test]
    fn what_is_written_reads_back_in_row_groups_with_the_options() {
        let dir =
            std::env::temp_dir().join(format!("callsweep-parquet-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.parquet");
        let options = ParquetOptions {
            dictionary: vec!["image".to_owned()],
            compressed: Some(vec!["image".to_owned(), "event.category".to_owned()]),
        };
        let mut out = ParquetOut::create(&path, schema(), &options, 3).unwrap();
        let batches = vec![batch(0, 10), batch(10, 25), batch(35, 3)];
        out.write(&batches, 7).unwrap();
        out.write(&[batch(38, 2)], 7).unwrap();
        out.close().unwrap();

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let metadata = reader.metadata().clone();
        // The schema's metadata comes back with the schema (the embedded Arrow schema).
        assert_eq!(reader.schema().metadata(), schema().metadata());
        // 38 rows in groups of 7 (the last of 3), then the second write's 2 rows on their own.
        let sizes: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, vec![7, 7, 7, 7, 7, 3, 2]);
        let back: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let back = arrow_select_concat(&back);
        let written = arrow_select_concat(&[batches, vec![batch(38, 2)]].concat());
        assert_eq!(back.columns()[..2], written.columns()[..2]);
        // The list's values are named `element` in the file (below), `item` in the batches.
        let (got, want) = (
            back.column(2).as_list::<i32>(),
            written.column(2).as_list::<i32>(),
        );
        assert_eq!(got.offsets(), want.offsets());
        assert_eq!(got.nulls(), want.nulls());
        assert_eq!(
            got.values().as_string::<i32>(),
            want.values().as_string::<i32>()
        );

        let file = metadata.file_metadata();
        let keys: Vec<&str> = file
            .key_value_metadata()
            .unwrap()
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert!(keys.contains(&"callsweep.source") && keys.contains(&"ARROW:schema"));
        let group = metadata.row_group(0);
        let by_path: HashMap<String, _> = group
            .columns()
            .iter()
            .map(|c| (c.column_path().string(), c))
            .collect();
        // The list's values are named as the Parquet format and pyarrow name them.
        let list = &by_path["event.category.list.element"];
        assert_eq!(
            list.compression(),
            Compression::ZSTD(ZstdLevel::try_new(1).unwrap())
        );
        let image = &by_path["image"];
        assert!(image.dictionary_page_offset().is_some());
        assert!(image.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
        let id = &by_path["id"];
        assert_eq!(id.compression(), Compression::UNCOMPRESSED);
        assert!(id.dictionary_page_offset().is_none());
        // Statistics as a scan prunes by them: the row group's smallest and largest id.
        let stats = id.statistics().unwrap();
        assert_eq!(stats.min_bytes_opt(), Some(&0i64.to_le_bytes()[..]));
        assert_eq!(stats.max_bytes_opt(), Some(&6i64.to_le_bytes()[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
        arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
    }

    #[test]
    fn a_batch_of_another_schema_is_refused() {
        let path =
            std::env::temp_dir().join(format!("callsweep-refused-{}.parquet", std::process::id()));
        let mut out = ParquetOut::create(&path, schema(), &ParquetOptions::default(), 2).unwrap();
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1i64])) as ArrayRef],
        )
        .unwrap();
        let err = out.write(&[other], 10).unwrap_err();
        assert!(err.to_string().contains("another schema"), "{err}");
        drop(out);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_full_disk_is_an_error_naming_the_file() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            return;
        }
        let mut out = ParquetOut::create(path, schema(), &ParquetOptions::default(), 2).unwrap();
        // Every write fails (ENOSPC); the buffered ones when a row group is appended, or at the
        // footer.
        let result = out
            .write(&[batch(0, 5000), batch(5000, 5000)], 1000)
            .and_then(|()| out.close());
        let err = result.unwrap_err();
        assert!(err.to_string().contains("/dev/full"), "{err}");
        assert!(err.to_string().contains("No space left"), "{err}");
    }
}
