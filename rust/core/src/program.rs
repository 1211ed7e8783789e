//! A rule's condition compiled into a boolean program over the columns of a batch, evaluated
//! with short-circuits: `a and b` tests `b` only on the rows where `a` held.
//!
//! Matching a wildcard costs a memory access per value; in the direct-syscall rule the
//! CallTrace test leaves about one row in two hundred, so the tests after it (target and source
//! images) would otherwise do two hundred times the work they need. Leaves that are not
//! wildcards (comparisons, lengths) are computed by the caller (polars) and arrive as boolean
//! columns.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray};
use arrow_buffer::BooleanBuffer;
use arrow_schema::DataType;

use crate::glob::PatternSet;
use crate::kernel::match_rows;
use crate::Error;

/// A boolean condition over columns `0..n` of a batch. Its value on a row is never null: a
/// missing value makes a wildcard false and a precomputed leaf is false where it is null, as a
/// test on a missing field is false in Elasticsearch.
#[derive(Debug, Clone)]
pub enum Program {
    Const(bool),
    /// A boolean column computed by the caller.
    Column(usize),
    /// The column's value matches one of the patterns.
    Wildcard {
        column: usize,
        set: PatternSet,
    },
    Not(Box<Program>),
    And(Vec<Program>),
    Or(Vec<Program>),
}

impl Program {
    /// The condition's value on every row of a batch of `len` rows.
    pub fn evaluate(&self, columns: &[ArrayRef], len: usize) -> Result<BooleanArray, Error> {
        if let Some(bad) = columns.iter().find(|c| c.len() != len) {
            return Err(Error::Program(format!(
                "a column has {} rows where the batch has {len}",
                bad.len()
            )));
        }
        let all = BooleanBuffer::new_set(len);
        Ok(BooleanArray::new(self.eval(columns, &all)?, None))
    }

    /// The highest column index the program reads, if any.
    pub fn max_column(&self) -> Option<usize> {
        match self {
            Program::Const(_) => None,
            Program::Column(c) | Program::Wildcard { column: c, .. } => Some(*c),
            Program::Not(p) => p.max_column(),
            Program::And(ps) | Program::Or(ps) => ps.iter().filter_map(|p| p.max_column()).max(),
        }
    }

    /// `alive & self`: the value on the rows set in `alive`, false elsewhere. Rows not alive
    /// are never looked at by the wildcard kernel.
    fn eval(&self, columns: &[ArrayRef], alive: &BooleanBuffer) -> Result<BooleanBuffer, Error> {
        Ok(match self {
            Program::Const(true) => alive.clone(),
            Program::Const(false) => BooleanBuffer::new_unset(alive.len()),
            Program::Column(c) => {
                let column = column(columns, *c)?;
                let DataType::Boolean = column.data_type() else {
                    return Err(Error::Program(format!(
                        "column {c} should hold booleans, not {}",
                        column.data_type()
                    )));
                };
                let values = column.as_boolean();
                let mut set = alive & values.values();
                if let Some(nulls) = values.logical_nulls() {
                    set = &set & nulls.inner();
                }
                set
            }
            Program::Wildcard { column: c, set } => {
                if alive.count_set_bits() == 0 {
                    return Ok(alive.clone());
                }
                match_rows(column(columns, *c)?.as_ref(), set, Some(alive))?
            }
            Program::Not(inner) => {
                let held = inner.eval(columns, alive)?;
                alive & &!&held
            }
            Program::And(parts) => {
                let mut rows = alive.clone();
                for part in parts {
                    if rows.count_set_bits() == 0 {
                        break;
                    }
                    rows = part.eval(columns, &rows)?;
                }
                rows
            }
            Program::Or(parts) => {
                let mut held = BooleanBuffer::new_unset(alive.len());
                let mut undecided = alive.clone();
                for part in parts {
                    if undecided.count_set_bits() == 0 {
                        break;
                    }
                    let now = part.eval(columns, &undecided)?;
                    held = &held | &now;
                    undecided = &undecided & &!&now;
                }
                held
            }
        })
    }
}

fn column(columns: &[ArrayRef], index: usize) -> Result<&ArrayRef, Error> {
    columns
        .get(index)
        .ok_or_else(|| Error::Program(format!("no column {index} in a batch of {}", columns.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, StringArray};
    use std::sync::Arc;

    fn wildcard(column: usize, patterns: &[&str]) -> Program {
        Program::Wildcard {
            column,
            set: PatternSet::new(patterns),
        }
    }

    fn run(p: &Program, columns: &[ArrayRef]) -> Vec<bool> {
        let len = columns[0].len();
        p.evaluate(columns, len)
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    }

    fn batch() -> Vec<ArrayRef> {
        let trace = StringArray::from(vec![
            Some("C:\\Windows\\System32\\ntdll.dll+1"),
            Some("UNKNOWN(1)"),
            Some("UNKNOWN(2)"),
            None,
        ]);
        let target = StringArray::from(vec![
            Some("C:\\Windows\\system32\\lsass.exe"),
            Some("C:\\Windows\\system32\\lsass.exe"),
            Some("C:\\Program Files\\Cisco\\AMP\\1\\sfc.exe"),
            Some("C:\\Windows\\system32\\lsass.exe"),
        ]);
        let non_empty = BooleanArray::from(vec![Some(true), Some(true), Some(true), None]);
        vec![Arc::new(trace), Arc::new(target), Arc::new(non_empty)]
    }

    #[test]
    fn the_rule_shape() {
        // length(CallTrace) > 0 and not CallTrace : ntdll and not TargetImage : sfc
        let p = Program::And(vec![
            Program::Column(2),
            Program::Not(Box::new(wildcard(
                0,
                &["?:\\windows\\system32\\ntdll.dll*"],
            ))),
            Program::Not(Box::new(wildcard(
                1,
                &["?:\\Program Files\\Cisco\\AMP\\*\\sfc.exe"],
            ))),
        ]);
        assert_eq!(run(&p, &batch()), [false, true, false, false]);
    }

    #[test]
    fn not_of_missing_holds_and_or_short_circuits() {
        let b = batch();
        // `not CallTrace : "*"` holds only where CallTrace is missing.
        assert_eq!(
            run(&Program::Not(Box::new(wildcard(0, &["*"]))), &b),
            [false, false, false, true]
        );
        let p = Program::Or(vec![
            wildcard(0, &["UNKNOWN(1)"]),
            wildcard(1, &["*sfc.exe"]),
        ]);
        assert_eq!(run(&p, &b), [false, true, true, false]);
        assert_eq!(run(&Program::Const(true), &b), [true; 4]);
        assert_eq!(
            run(&Program::Not(Box::new(Program::Const(true))), &b),
            [false; 4]
        );
    }

    #[test]
    fn bad_columns_are_errors() {
        let b = batch();
        assert!(matches!(
            Program::Column(0).evaluate(&b, 4),
            Err(Error::Program(_))
        ));
        assert!(matches!(
            Program::Column(9).evaluate(&b, 4),
            Err(Error::Program(_))
        ));
        assert!(matches!(
            wildcard(0, &["*"]).evaluate(&b, 5),
            Err(Error::Program(_))
        ));
        assert_eq!(
            Program::And(vec![wildcard(1, &["x"]), Program::Column(2)]).max_column(),
            Some(2)
        );
    }
}
