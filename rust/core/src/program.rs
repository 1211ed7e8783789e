//! A rule's condition compiled into a boolean program over the columns of a batch, evaluated
//! with short-circuits: `a and b` tests `b` only on the rows where `a` held.
//!
//! Matching a wildcard costs a memory access per value; in the direct-syscall rule the
//! CallTrace test leaves about one row in two hundred, so the tests after it (target and source
//! images) would otherwise do two hundred times the work they need. Leaves that are not
//! wildcards (comparisons, lengths) are computed by the caller (polars) and arrive as boolean
//! columns.
//!
//! Several rules are one `RuleSet`: their programs over one batch, with the tests they share
//! (the ntdll exclusion of most direct-syscall variants) as shared programs, each evaluated at
//! most once per row, and only on the rows some rule asks it for. `RuleSet::any` is the filter
//! (a row is done once a rule holds on it); `RuleSet::each` each rule's value on every row.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray};
use arrow_buffer::BooleanBuffer;
use arrow_schema::DataType;

use crate::glob::PatternSet;
use crate::kernel::{match_rows, match_rows_many};
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
    /// The shared program of that index in the `RuleSet` (see `Shared`).
    Shared(usize),
    /// The wildcard leaf of that index in a `RuleSet`, which writes every `Wildcard` of its
    /// programs as one (see `RuleSet::new`).
    Leaf(usize),
}

/// What the shared programs and the wildcard leaves of one evaluation have given so far: per
/// program (per leaf), the rows it was evaluated on and its value there.
struct Memo {
    known: Vec<Option<(BooleanBuffer, BooleanBuffer)>>,
    leaves: Vec<Option<(BooleanBuffer, BooleanBuffer)>>,
}

/// What an evaluation reads: the batch's columns, the shared programs, and the wildcard leaves
/// (column, patterns) with, per column, the leaves on it.
struct Batch<'a> {
    columns: &'a [ArrayRef],
    shared: &'a [Program],
    leaves: &'a [(usize, PatternSet)],
    on_column: &'a [Vec<usize>],
}

/// A leaf asked for on at least one row in this many is matched in one pass together with the
/// other leaves on its column (`match_rows_many`), on the same rows.
const FUSE_DIVISOR: usize = 4;

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
        let batch = Batch {
            columns,
            shared: &[],
            leaves: &[],
            on_column: &[],
        };
        let mut memo = Memo {
            known: Vec::new(),
            leaves: Vec::new(),
        };
        Ok(BooleanArray::new(self.eval(&batch, &mut memo, &all)?, None))
    }

    /// The highest column index the program reads, if any.
    pub fn max_column(&self) -> Option<usize> {
        match self {
            Program::Const(_) | Program::Shared(_) | Program::Leaf(_) => None,
            Program::Column(c) | Program::Wildcard { column: c, .. } => Some(*c),
            Program::Not(p) => p.max_column(),
            Program::And(ps) | Program::Or(ps) => ps.iter().filter_map(|p| p.max_column()).max(),
        }
    }

    /// The highest shared program index the program reads, if any.
    fn max_shared(&self) -> Option<usize> {
        match self {
            Program::Shared(k) => Some(*k),
            Program::Const(_)
            | Program::Column(_)
            | Program::Wildcard { .. }
            | Program::Leaf(_) => None,
            Program::Not(p) => p.max_shared(),
            Program::And(ps) | Program::Or(ps) => ps.iter().filter_map(|p| p.max_shared()).max(),
        }
    }

    /// The program with each `Wildcard` moved into `leaves` and read as its `Leaf`.
    fn leaves_into(self, leaves: &mut Vec<(usize, PatternSet)>) -> Program {
        match self {
            Program::Wildcard { column, set } => {
                leaves.push((column, set));
                Program::Leaf(leaves.len() - 1)
            }
            Program::Not(p) => Program::Not(Box::new(p.leaves_into(leaves))),
            Program::And(ps) => {
                Program::And(ps.into_iter().map(|p| p.leaves_into(leaves)).collect())
            }
            Program::Or(ps) => Program::Or(ps.into_iter().map(|p| p.leaves_into(leaves)).collect()),
            other => other,
        }
    }

    /// `alive & self`: the value on the rows set in `alive`, false elsewhere. Rows not alive
    /// are never looked at by the wildcard kernel.
    fn eval(
        &self,
        batch: &Batch<'_>,
        memo: &mut Memo,
        alive: &BooleanBuffer,
    ) -> Result<BooleanBuffer, Error> {
        let columns = batch.columns;
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
                let held = inner.eval(batch, memo, alive)?;
                alive & &!&held
            }
            Program::Leaf(k) => {
                let Some((c, set)) = batch.leaves.get(*k) else {
                    return Err(Error::Program(format!(
                        "no wildcard leaf {k} of {}",
                        batch.leaves.len()
                    )));
                };
                if alive.count_set_bits() == 0 {
                    return Ok(alive.clone());
                }
                if memo.leaves.len() < batch.leaves.len() {
                    memo.leaves.resize(batch.leaves.len(), None);
                }
                let need = match &memo.leaves[*k] {
                    Some((known, _)) => alive & &!known,
                    None => alive.clone(),
                };
                let asked = need.count_set_bits();
                if asked > 0 {
                    let array = column(columns, *c)?.as_ref();
                    let siblings = batch.on_column.get(*c).map_or(&[][..], |s| &s[..]);
                    // Asked for on many rows: the other leaves on the column are decided on
                    // them in the same pass, while each value is in cache (where a rule asks
                    // them later, they are known). Their values are exact; only the work is
                    // done early, at most once per row and leaf.
                    if siblings.len() > 1
                        && siblings.len() <= crate::kernel::MANY_MAX
                        && asked * FUSE_DIVISOR >= alive.len()
                    {
                        let sets: Vec<&PatternSet> =
                            siblings.iter().map(|&j| &batch.leaves[j].1).collect();
                        let values = match_rows_many(array, &sets, &need)?;
                        for (&j, value) in siblings.iter().zip(values) {
                            remember(&mut memo.leaves[j], &need, value);
                        }
                    } else {
                        let value = match_rows(array, set, Some(&need))?;
                        remember(&mut memo.leaves[*k], &need, value);
                    }
                }
                match &memo.leaves[*k] {
                    Some((_, value)) => alive & value,
                    None => BooleanBuffer::new_unset(alive.len()),
                }
            }
            Program::Shared(k) => {
                let Some(program) = batch.shared.get(*k) else {
                    return Err(Error::Program(format!(
                        "no shared program {k} of {}",
                        batch.shared.len()
                    )));
                };
                if memo.known.len() <= *k {
                    memo.known.resize(*k + 1, None);
                }
                let (known, value) = memo.known[*k].take().unwrap_or_else(|| {
                    let none = BooleanBuffer::new_unset(alive.len());
                    (none.clone(), none)
                });
                // Only the rows asked for now that no earlier request covered (`value` is set
                // on known rows only, and `now` on needed ones).
                let need = alive & &!&known;
                let (known, value) = if need.count_set_bits() == 0 {
                    (known, value)
                } else {
                    let now = program.eval(batch, memo, &need)?;
                    (&known | &need, &value | &now)
                };
                let held = alive & &value;
                memo.known[*k] = Some((known, value));
                held
            }
            Program::And(parts) => {
                let mut rows = alive.clone();
                let mut left: Vec<&Program> = parts.iter().collect();
                while !left.is_empty() && rows.count_set_bits() > 0 {
                    let part = left.remove(known_first(&left, memo, &rows));
                    rows = part.eval(batch, memo, &rows)?;
                }
                rows
            }
            Program::Or(parts) => {
                let mut held = BooleanBuffer::new_unset(alive.len());
                let mut undecided = alive.clone();
                let mut left: Vec<&Program> = parts.iter().collect();
                while !left.is_empty() && undecided.count_set_bits() > 0 {
                    let part = left.remove(known_first(&left, memo, &undecided));
                    let now = part.eval(batch, memo, &undecided)?;
                    held = &held | &now;
                    undecided = &undecided & &!&now;
                }
                held
            }
        })
    }
}

/// Which of the operands of an `and` / `or` to evaluate next on `rows`: the first whose value
/// there is already known (`Program::is_known`), else the first. A known operand costs no
/// matching and can only narrow the rows the others are matched on: in ten sibling rules,
/// `TargetImage : "*lsass.exe" and not CallTrace : (ntdll...)` then matches the image on the
/// 0.5% of rows the ntdll test (known from an earlier rule) left, not on every row. The order
/// changes no value: operands are never null and have no effects.
fn known_first(operands: &[&Program], memo: &Memo, rows: &BooleanBuffer) -> usize {
    operands
        .iter()
        .position(|p| p.is_known(memo, rows))
        .unwrap_or(0)
}

impl Program {
    /// Whether the value on `rows` needs no matching: constants, the caller's columns, and
    /// leaves and shared programs already evaluated on all of `rows` (a pass over a column
    /// decides every leaf on it, `FUSE_DIVISOR`).
    fn is_known(&self, memo: &Memo, rows: &BooleanBuffer) -> bool {
        match self {
            Program::Const(_) | Program::Column(_) => true,
            Program::Wildcard { .. } => false,
            Program::Not(p) => p.is_known(memo, rows),
            Program::And(ps) | Program::Or(ps) => ps.iter().all(|p| p.is_known(memo, rows)),
            Program::Leaf(k) => known_on(memo.leaves.get(*k), rows),
            Program::Shared(k) => known_on(memo.known.get(*k), rows),
        }
    }
}

/// Whether an entry of `Memo` covers every row of `rows`.
fn known_on(entry: Option<&Option<(BooleanBuffer, BooleanBuffer)>>, rows: &BooleanBuffer) -> bool {
    let Some(Some((known, _))) = entry else {
        return false;
    };
    debug_assert_eq!(rows.len(), known.len());
    let rows = rows.inner().bit_chunks(rows.offset(), rows.len());
    let known = known.inner().bit_chunks(known.offset(), known.len());
    rows.iter_padded()
        .zip(known.iter_padded())
        .all(|(r, k)| r & !k == 0)
}

/// Adds a leaf's `value` on `rows` to what is known of it (a row known before gets the same
/// value again: a leaf's value on a row never changes).
fn remember(
    entry: &mut Option<(BooleanBuffer, BooleanBuffer)>,
    rows: &BooleanBuffer,
    value: BooleanBuffer,
) {
    *entry = Some(match entry.take() {
        None => (rows.clone(), value),
        Some((known, old)) => (&known | rows, &(&old & &!rows) | &value),
    });
}

/// Several rules' programs over the columns of one batch, sharing `shared`: `Program::Shared(k)`
/// in a rule (or in a later shared program) is `shared[k]`, evaluated once per row at most in
/// one call of `any` or `each`, on the rows the rules ask it for.
#[derive(Debug, Clone)]
pub struct RuleSet {
    shared: Vec<Program>,
    rules: Vec<Program>,
    /// Every `Wildcard` of the programs, which read them as `Leaf`s: (column, patterns).
    leaves: Vec<(usize, PatternSet)>,
    /// Per column, the leaves on it.
    on_column: Vec<Vec<usize>>,
}

impl RuleSet {
    /// Refuses a shared program reading itself or a later one (it could never be evaluated).
    pub fn new(shared: Vec<Program>, rules: Vec<Program>) -> Result<RuleSet, Error> {
        for (k, program) in shared.iter().enumerate() {
            if program.max_shared().is_some_and(|j| j >= k) {
                return Err(Error::Program(format!(
                    "shared program {k} reads shared program {}",
                    program.max_shared().unwrap_or(k)
                )));
            }
        }
        if let Some(k) = rules.iter().filter_map(|r| r.max_shared()).max() {
            if k >= shared.len() {
                return Err(Error::Program(format!(
                    "no shared program {k} of {}",
                    shared.len()
                )));
            }
        }
        let mut leaves = Vec::new();
        let shared: Vec<Program> = shared
            .into_iter()
            .map(|p| p.leaves_into(&mut leaves))
            .collect();
        let rules: Vec<Program> = rules
            .into_iter()
            .map(|p| p.leaves_into(&mut leaves))
            .collect();
        let mut on_column: Vec<Vec<usize>> = Vec::new();
        for (k, (c, _)) in leaves.iter().enumerate() {
            if on_column.len() <= *c {
                on_column.resize(c + 1, Vec::new());
            }
            on_column[*c].push(k);
        }
        Ok(RuleSet {
            shared,
            rules,
            leaves,
            on_column,
        })
    }

    pub fn rules(&self) -> usize {
        self.rules.len()
    }

    /// The highest column index any program reads, if any.
    pub fn max_column(&self) -> Option<usize> {
        self.shared
            .iter()
            .chain(&self.rules)
            .filter_map(|p| p.max_column())
            .chain(self.leaves.iter().map(|(c, _)| *c))
            .max()
    }

    /// Whether some rule holds, row by row: each rule is evaluated only on the rows no rule
    /// before it held on.
    pub fn any(&self, columns: &[ArrayRef], len: usize) -> Result<BooleanArray, Error> {
        let (batch, mut memo) = self.start(columns, len)?;
        let mut held = BooleanBuffer::new_unset(len);
        let mut undecided = BooleanBuffer::new_set(len);
        for rule in &self.rules {
            if undecided.count_set_bits() == 0 {
                break;
            }
            let now = rule.eval(&batch, &mut memo, &undecided)?;
            held = &held | &now;
            undecided = &undecided & &!&now;
        }
        Ok(BooleanArray::new(held, None))
    }

    /// Each rule's value on every row, in rule order.
    pub fn each(&self, columns: &[ArrayRef], len: usize) -> Result<Vec<BooleanArray>, Error> {
        let (batch, mut memo) = self.start(columns, len)?;
        let all = BooleanBuffer::new_set(len);
        self.rules
            .iter()
            .map(|rule| Ok(BooleanArray::new(rule.eval(&batch, &mut memo, &all)?, None)))
            .collect()
    }

    fn start<'a>(
        &'a self,
        columns: &'a [ArrayRef],
        len: usize,
    ) -> Result<(Batch<'a>, Memo), Error> {
        if let Some(bad) = columns.iter().find(|c| c.len() != len) {
            return Err(Error::Program(format!(
                "a column has {} rows where the batch has {len}",
                bad.len()
            )));
        }
        let batch = Batch {
            columns,
            shared: &self.shared,
            leaves: &self.leaves,
            on_column: &self.on_column,
        };
        let memo = Memo {
            known: vec![None; self.shared.len()],
            leaves: vec![None; self.leaves.len()],
        };
        Ok((batch, memo))
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
    use arrow_array::{BooleanArray, StringArray, StringViewArray};
    use proptest::prelude::*;
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

    /// `p` with every `Shared(k)` replaced by `shared[k]` (itself inlined).
    fn inlined(p: &Program, shared: &[Program]) -> Program {
        match p {
            Program::Shared(k) => inlined(&shared[*k], shared),
            Program::Not(inner) => Program::Not(Box::new(inlined(inner, shared))),
            Program::And(ps) => Program::And(ps.iter().map(|q| inlined(q, shared)).collect()),
            Program::Or(ps) => Program::Or(ps.iter().map(|q| inlined(q, shared)).collect()),
            other => other.clone(),
        }
    }

    fn leaf(shared: usize) -> impl Strategy<Value = Program> {
        let patterns = prop::sample::subsequence(
            vec![
                "?:\\windows\\system32\\ntdll.dll*",
                "UNKNOWN(*",
                "*lsass.exe",
                "*(*",
                "*",
            ],
            1..3,
        );
        let mut leaves: Vec<BoxedStrategy<Program>> = vec![
            any::<bool>().prop_map(Program::Const).boxed(),
            Just(Program::Column(2)).boxed(),
            (0usize..2, patterns)
                .prop_map(|(column, ps)| wildcard(column, &ps))
                .boxed(),
        ];
        if shared > 0 {
            leaves.push((0..shared).prop_map(Program::Shared).boxed());
        }
        prop::strategy::Union::new(leaves)
    }

    fn program(shared: usize) -> impl Strategy<Value = Program> {
        leaf(shared).prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                inner.clone().prop_map(|p| Program::Not(Box::new(p))),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Program::And),
                prop::collection::vec(inner, 0..4).prop_map(Program::Or),
            ]
        })
    }

    /// Shared programs, each reading only earlier ones, and rules reading any of them.
    fn rule_set() -> impl Strategy<Value = (Vec<Program>, Vec<Program>)> {
        (0usize..4).prop_flat_map(|n| {
            let shared: Vec<BoxedStrategy<Program>> = (0..n).map(|k| program(k).boxed()).collect();
            (shared, prop::collection::vec(program(n), 0..6))
        })
    }

    fn value() -> impl Strategy<Value = Option<&'static str>> {
        prop::sample::select(vec![
            Some("C:\\Windows\\System32\\ntdll.dll+1|UNKNOWN(1)"),
            Some("UNKNOWN(1)|x"),
            Some("C:\\Windows\\system32\\lsass.exe"),
            Some(""),
            None,
        ])
    }

    proptest! {
        /// Shared programs evaluated once per row, on the rows asked for, give every rule the
        /// value of its program with the shared ones written out; `any` is their `or`.
        #[test]
        fn shared_programs_give_what_inlining_gives(
            (shared, rules) in rule_set(),
            rows in prop::collection::vec((value(), value(), prop::option::of(any::<bool>())), 0..40),
            views in any::<bool>(),
        ) {
            // String views (as polars hands them over) take the one-pass path for the leaves
            // of a column, plain strings the one-set path.
            let first: Vec<_> = rows.iter().map(|r| r.0).collect();
            let second: Vec<_> = rows.iter().map(|r| r.1).collect();
            let (a, b): (ArrayRef, ArrayRef) = if views {
                (Arc::new(StringViewArray::from(first)), Arc::new(StringViewArray::from(second)))
            } else {
                (Arc::new(StringArray::from(first)), Arc::new(StringArray::from(second)))
            };
            let c: ArrayRef = Arc::new(BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()));
            let columns = vec![a, b, c];
            let len = rows.len();
            let set = RuleSet::new(shared.clone(), rules.clone()).unwrap();
            let want: Vec<Vec<bool>> = rules
                .iter()
                .map(|r| {
                    let alone = inlined(r, &shared).evaluate(&columns, len).unwrap();
                    alone.iter().map(|v| v.unwrap()).collect()
                })
                .collect();
            let each = set.each(&columns, len).unwrap();
            let got: Vec<Vec<bool>> = each
                .iter()
                .map(|a| { assert_eq!(a.null_count(), 0); a.iter().map(|v| v.unwrap()).collect() })
                .collect();
            prop_assert_eq!(&got, &want);
            let any: Vec<bool> = set.any(&columns, len).unwrap().iter().map(|v| v.unwrap()).collect();
            let or: Vec<bool> = (0..len).map(|i| want.iter().any(|w| w[i])).collect();
            prop_assert_eq!(any, or);
        }
    }

    #[test]
    fn an_operand_known_from_an_earlier_rule_is_taken_first() {
        // Rule 0 decides the ntdll test on every row; rule 1 writes its image test first, yet
        // matches the image only on the rows the (known) ntdll test leaves.
        let ntdll = wildcard(0, &["?:\\windows\\system32\\ntdll.dll*"]);
        let not_ntdll = || Program::Not(Box::new(Program::Shared(0)));
        let rules = vec![
            Program::And(vec![not_ntdll()]),
            Program::And(vec![wildcard(1, &["*lsass.exe"]), not_ntdll()]),
        ];
        let set = RuleSet::new(vec![ntdll], rules).unwrap();
        let columns = batch();
        let (b, mut memo) = set.start(&columns, 4).unwrap();
        let all = BooleanBuffer::new_set(4);
        let values: Vec<Vec<bool>> = set
            .rules
            .iter()
            .map(|r| r.eval(&b, &mut memo, &all).unwrap().iter().collect())
            .collect();
        assert_eq!(
            values,
            [[false, true, true, true], [false, true, false, true]]
        );
        let (image_rows, _) = memo.leaves[1].as_ref().expect("the image test ran");
        assert_eq!(
            image_rows.iter().collect::<Vec<_>>(),
            [false, true, true, true]
        );
    }

    #[test]
    fn shared_programs_are_checked() {
        let w = || wildcard(0, &["x"]);
        assert!(RuleSet::new(vec![Program::Shared(0)], vec![]).is_err());
        assert!(RuleSet::new(vec![w()], vec![Program::Shared(1)]).is_err());
        assert!(RuleSet::new(
            vec![w(), Program::Not(Box::new(Program::Shared(0)))],
            vec![Program::Shared(1)]
        )
        .is_ok());
        // A program alone has no shared programs.
        let b = batch();
        assert!(matches!(
            Program::Shared(0).evaluate(&b, 4),
            Err(Error::Program(_))
        ));
        let set = RuleSet::new(vec![w()], vec![Program::Shared(0)]).unwrap();
        assert_eq!(set.rules(), 1);
        assert_eq!(set.max_column(), Some(0));
        assert!(matches!(set.any(&b, 5), Err(Error::Program(_))));
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
