//! Batches in the form callsweep's Parquet layout writes them (`python/callsweep/layout.py`,
//! `layout_schema`): the dictionary columns as plain strings, and the CallTrace prefix column
//! (`winlog.event_data.CallTrace[:64]`, the first 64 characters of each CallTrace) appended.
//!
//! Why here and not in pyarrow: on the many small files of collected logs, the three casts and
//! the prefix slice, a compute call each, plus rebuilding the batch took about a millisecond
//! per file of Python time (a tenth of converting it); done on the decoding thread they cost
//! microseconds and no GIL.

use std::sync::{Arc, OnceLock};

use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::schema::{evtx_schema, EVENT_DATA_PREFIX};

/// Characters (Unicode scalars) of the stored CallTrace prefix.
pub const CALL_TRACE_PREFIX_CHARS: usize = 64;

struct Form {
    schema: SchemaRef,
    /// The CallTrace column, in the decoded schema.
    call_trace: usize,
}

fn form() -> &'static Form {
    static FORM: OnceLock<Form> = OnceLock::new();
    FORM.get_or_init(|| {
        let decoded = evtx_schema();
        let call_trace_name = format!("{EVENT_DATA_PREFIX}CallTrace");
        let call_trace = decoded
            .index_of(&call_trace_name)
            .expect("the schema has a CallTrace column");
        let mut fields: Vec<Field> = decoded
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Dictionary(_, value) => f.as_ref().clone().with_data_type(*value.clone()),
                _ => f.as_ref().clone(),
            })
            .collect();
        fields.push(Field::new(
            format!("{call_trace_name}[:{CALL_TRACE_PREFIX_CHARS}]"),
            DataType::Utf8,
            true,
        ));
        Form {
            schema: Arc::new(Schema::new(fields)),
            call_trace,
        }
    })
}

/// The schema of the batches [`for_layout`] gives.
pub fn layout_schema() -> SchemaRef {
    form().schema.clone()
}

/// A decoded batch (of [`evtx_schema`]) in the layout's form ([`layout_schema`]).
pub(crate) fn for_layout(batch: RecordBatch) -> RecordBatch {
    let form = form();
    let mut columns: Vec<ArrayRef> = batch.columns().iter().map(plain).collect();
    let call_trace = columns[form.call_trace]
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("CallTrace is a Utf8 column");
    let prefix = prefix(call_trace, CALL_TRACE_PREFIX_CHARS);
    columns.push(Arc::new(prefix));
    RecordBatch::try_new(form.schema.clone(), columns).expect("the columns match the schema")
}

/// A dictionary-encoded string column as plain strings (any other column as it is).
fn plain(column: &ArrayRef) -> ArrayRef {
    let Some(dict) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() else {
        return Arc::clone(column);
    };
    let values = dict
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("dictionaries of strings");
    let plain: StringArray = dict
        .keys()
        .iter()
        .map(|key| {
            key.and_then(|k| {
                values
                    .is_valid(k as usize)
                    .then(|| values.value(k as usize))
            })
        })
        .collect();
    Arc::new(plain)
}

/// The first `chars` characters of each value, as pyarrow's `utf8_slice_codeunits(v, 0,
/// chars)` cuts them (Unicode scalars, not bytes); nulls stay null.
fn prefix(values: &StringArray, chars: usize) -> StringArray {
    values
        .iter()
        .map(|v| v.map(|s| first_chars(s, chars)))
        .collect()
}

fn first_chars(s: &str, chars: usize) -> &str {
    // Byte length first: most CallTraces are ASCII, and a string of at most `chars` bytes has
    // at most `chars` characters.
    if s.len() <= chars {
        return s;
    }
    match s.char_indices().nth(chars) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_count_characters_not_bytes() {
        let long_ascii = "a".repeat(70);
        let long_accented = "é".repeat(70);
        let emoji = "😀".repeat(65);
        let values = StringArray::from(vec![
            Some(long_ascii.as_str()),
            Some("ab"),
            None,
            Some(long_accented.as_str()),
            Some(emoji.as_str()),
            Some(""),
        ]);
        let cut = prefix(&values, 64);
        let got: Vec<Option<&str>> = cut.iter().collect();
        let (a, e, m) = ("a".repeat(64), "é".repeat(64), "😀".repeat(64));
        assert_eq!(
            got,
            [
                Some(a.as_str()),
                Some("ab"),
                None,
                Some(e.as_str()),
                Some(m.as_str()),
                Some("")
            ]
        );
    }

    #[test]
    fn dictionary_columns_become_their_values() {
        let keys = arrow_array::Int32Array::from(vec![Some(1), None, Some(0), Some(1)]);
        let dict = DictionaryArray::<Int32Type>::try_new(
            keys,
            Arc::new(StringArray::from(vec!["host-a", "host-b"])),
        )
        .unwrap();
        let column: ArrayRef = Arc::new(dict);
        let out = plain(&column);
        let out = out.as_any().downcast_ref::<StringArray>().unwrap();
        let got: Vec<Option<&str>> = out.iter().collect();
        assert_eq!(got, [Some("host-b"), None, Some("host-a"), Some("host-b")]);
    }

    #[test]
    fn the_layout_schema_is_the_decoded_one_plain_with_the_prefix() {
        let decoded = evtx_schema();
        let written = layout_schema();
        assert_eq!(written.fields().len(), decoded.fields().len() + 1);
        for (d, w) in decoded.fields().iter().zip(written.fields()) {
            assert_eq!(d.name(), w.name());
            assert!(!matches!(w.data_type(), DataType::Dictionary(..)));
        }
        let last = written.fields().last().unwrap();
        assert_eq!(last.name(), "winlog.event_data.CallTrace[:64]");
    }
}
