//! Questions the knowledge base could not answer, kept per knowledge base so that its content
//! owner sees what to write next.
//!
//! Repeats are counted together under a normalised form of the question, so the list shows
//! which gaps matter most. Who asked is never stored. The log is bounded per knowledge base:
//! a flood of one-off questions pushes out the stalest entries instead of growing the file.

use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Key: `kb \0 normalised question`; value: a JSON `Gap`.
const GAPS: TableDefinition<&str, &[u8]> = TableDefinition::new("gaps_v1");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The wording of the first asker; later variants only raise the count.
    pub question: String,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub count: u64,
}

/// redb has one error type per operation; all of them mean the same thing to a caller.
macro_rules! store_errors {
    ($($error:ident),*) => {$(
        impl From<redb::$error> for Error {
            fn from(err: redb::$error) -> Self {
                Error::GapStore(err.into())
            }
        }
    )*};
}
store_errors! { DatabaseError, TransactionError, TableError, StorageError, CommitError, CompactionError }

pub struct GapLog {
    path: PathBuf,
    /// `None` after a failed write until it opens again (see [`GapLog::with_db`]).
    db: RwLock<Option<redb::Database>>,
    max_per_kb: usize,
}

/// Folds case, punctuation, symbols and spacing so that near-identical repeats share a key.
/// Letters and digits of every script survive, so unspaced scripts such as Chinese keep
/// their whole text.
fn normalise(question: &str) -> String {
    let kept: String = question
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn key(kb: &str, question: &str) -> String {
    format!("{kb}\0{}", normalise(question))
}

#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: the lint holds every caller to a blocking thread"
)]
impl GapLog {
    /// Opens or creates the log file. `max_per_kb` is raised to 1 because the entry just
    /// recorded is never the one evicted.
    ///
    /// Compacted at open, as the catalog is: the only moment it has the file to itself.
    pub fn open(path: &Path, max_per_kb: usize) -> Result<GapLog> {
        let mut db = redb::Database::create(path)?;
        db.compact()?;
        let txn = db.begin_write()?;
        txn.open_table(GAPS)?;
        txn.commit()?;
        let max_per_kb = max_per_kb.max(1);
        Ok(GapLog {
            path: path.to_path_buf(),
            db: RwLock::new(Some(db)),
            max_per_kb,
        })
    }

    /// Runs `call` on the database. Gaps are recorded on the query path, also when the disk
    /// is full: redb latches a failed write (every later call fails with `PreviousIo` until
    /// the file is opened again), so after an I/O error the database is closed and opened
    /// again, and the gaps of later questions are recorded once there is space. The gap of
    /// the question whose write failed is lost; the answer never depended on it.
    fn with_db<T>(&self, call: impl FnOnce(&redb::Database) -> Result<T>) -> Result<T> {
        let outcome = match self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            Some(db) => call(db),
            None => Err(Error::GapStore(redb::Error::PreviousIo)),
        };
        if let Err(Error::GapStore(redb::Error::Io(_) | redb::Error::PreviousIo)) = &outcome {
            let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
            // Closed before it is opened again: a file is open once per process.
            *slot = None;
            match redb::Database::create(&self.path) {
                Ok(db) => *slot = Some(db),
                Err(err) => tracing::warn!(error = %err, "gap log not opened again yet"),
            }
        }
        outcome
    }

    /// Counts one more hand-off of `question`, evicting the stalest gaps of `kb` beyond the
    /// bound.
    pub fn record(&self, kb: &str, question: &str, now_ms: i64) -> Result<Gap> {
        self.with_db(|db| self.record_in(db, kb, question, now_ms))
    }

    fn record_in(&self, db: &redb::Database, kb: &str, question: &str, now_ms: i64) -> Result<Gap> {
        let key = key(kb, question);
        let txn = db.begin_write()?;
        let mut table = txn.open_table(GAPS)?;
        let existing = table.get(key.as_str())?.map(|v| decode(v.value()));
        let mut gap = existing.transpose()?.unwrap_or_else(|| Gap {
            question: question.to_string(),
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            count: 0,
        });
        gap.count += 1;
        gap.last_seen_ms = gap.last_seen_ms.max(now_ms);
        table.insert(key.as_str(), serde_json::to_vec(&gap)?.as_slice())?;
        // Only a new entry can push a knowledge base over its bound; this also trims a log
        // left over-full by a previous run with a higher bound.
        if gap.count == 1 {
            let mut others = scan(&table, kb)?;
            others.retain(|(other, _)| *other != key);
            let excess = (others.len() + 1).saturating_sub(self.max_per_kb);
            others.sort_by_key(|(_, gap)| (gap.last_seen_ms, gap.count));
            for (stale, _) in others.iter().take(excess) {
                table.remove(stale.as_str())?;
            }
        }
        drop(table);
        txn.commit()?;
        Ok(gap)
    }

    /// Forgets `question` once it has been answered. Returns whether it was a recorded gap.
    pub fn resolve(&self, kb: &str, question: &str) -> Result<bool> {
        let key = key(kb, question);
        self.with_db(|db| {
            // Most answered questions were never gaps; a read avoids a write lock and a commit.
            let read = db.begin_read()?;
            if read.open_table(GAPS)?.get(key.as_str())?.is_none() {
                return Ok(false);
            }
            drop(read);
            let txn = db.begin_write()?;
            let removed = txn.open_table(GAPS)?.remove(key.as_str())?.is_some();
            txn.commit()?;
            Ok(removed)
        })
    }

    /// The gaps of `kb` seen at or after `since_ms`, most asked first, then most recent.
    pub fn list(&self, kb: &str, since_ms: Option<i64>) -> Result<Vec<Gap>> {
        let mut gaps: Vec<Gap> = self
            .with_db(|db| {
                let txn = db.begin_read()?;
                scan(&txn.open_table(GAPS)?, kb)
            })?
            .into_iter()
            .map(|(_, gap)| gap)
            .filter(|gap| since_ms.is_none_or(|since| gap.last_seen_ms >= since))
            .collect();
        gaps.sort_by_key(|gap| std::cmp::Reverse((gap.count, gap.last_seen_ms)));
        Ok(gaps)
    }
}

/// Every entry of one knowledge base with its key. `\u{1}` is the first character after the
/// `\0` separator, so a knowledge base whose name extends `kb` falls outside the range.
fn scan(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    kb: &str,
) -> Result<Vec<(String, Gap)>> {
    let (low, high) = (format!("{kb}\0"), format!("{kb}\u{1}"));
    let mut entries = Vec::new();
    for entry in table.range(low.as_str()..high.as_str())? {
        let (key, value) = entry?;
        entries.push((key.value().to_string(), decode(value.value())?));
    }
    Ok(entries)
}

fn decode(bytes: &[u8]) -> Result<Gap> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests set up files and wait")]
mod tests {
    use super::*;

    fn open(max_per_kb: usize) -> (tempfile::TempDir, GapLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = reopen(&dir, max_per_kb);
        (dir, log)
    }

    fn reopen(dir: &tempfile::TempDir, max_per_kb: usize) -> GapLog {
        GapLog::open(&dir.path().join("gaps.redb"), max_per_kb).unwrap()
    }

    /// Each gap as `question xcount`, in list order.
    fn listed(log: &GapLog, kb: &str, since_ms: Option<i64>) -> Vec<String> {
        let gaps = log.list(kb, since_ms).unwrap();
        gaps.iter()
            .map(|g| format!("{} x{}", g.question, g.count))
            .collect()
    }

    #[test]
    fn repeats_count_together_and_keep_the_first_wording() {
        let (_dir, log) = open(10);
        log.record("hr", "How do I claim  travel costs?", 1)
            .unwrap();
        log.record("hr", "how do i claim travel costs", 2).unwrap();
        let gap = log.record("hr", " HOW do I claim travel costs!! ", 3);
        let expected = Gap {
            question: "How do I claim  travel costs?".into(),
            first_seen_ms: 1,
            last_seen_ms: 3,
            count: 3,
        };
        assert_eq!(gap.unwrap(), expected);
        assert_eq!(log.list("hr", None).unwrap(), [expected]);
    }

    #[test]
    fn gaps_survive_reopen() {
        let (dir, log) = open(10);
        log.record("hr", "Parental leave?", 5).unwrap();
        drop(log);
        let log = reopen(&dir, 10);
        log.record("hr", "parental leave", 6).unwrap();
        assert_eq!(listed(&log, "hr", None), ["Parental leave? x2"]);
    }

    #[test]
    fn bound_evicts_the_least_recently_seen() {
        let (dir, log) = open(2);
        for (question, now_ms) in [("a", 1), ("a", 1), ("b", 1), ("c", 2)] {
            log.record("hr", question, now_ms).unwrap();
        }
        // b and a were last seen together; b, asked less, goes.
        assert_eq!(listed(&log, "hr", None), ["a x2", "c x1"]);
        log.record("hr", "d", 3).unwrap();
        assert_eq!(listed(&log, "hr", None), ["d x1", "c x1"]);
        // A lower bound after a restart trims the excess at the next new gap, keeping that one.
        drop(log);
        let log = reopen(&dir, 1);
        log.record("hr", "e", 0).unwrap();
        assert_eq!(listed(&log, "hr", None), ["e x1"]);
    }

    #[test]
    fn since_filters_by_last_seen() {
        let (_dir, log) = open(10);
        for (question, now_ms) in [("old", 10), ("new", 20), ("old", 15)] {
            log.record("hr", question, now_ms).unwrap();
        }
        assert_eq!(listed(&log, "hr", Some(15)).len(), 2);
        assert_eq!(listed(&log, "hr", Some(16)), ["new x1"]);
        assert!(listed(&log, "hr", Some(21)).is_empty());
    }

    #[test]
    fn resolve_removes_and_reports_absence() {
        let (_dir, log) = open(10);
        log.record("hr", "Where is the handbook?", 1).unwrap();
        assert!(!log.resolve("hr", "something else").unwrap());
        assert!(!log.resolve("it", "Where is the handbook?").unwrap());
        assert!(log.resolve("hr", "where is the handbook").unwrap());
        assert!(!log.resolve("hr", "Where is the handbook?").unwrap());
        assert_eq!(log.list("hr", None).unwrap(), []);
    }

    #[test]
    fn knowledge_bases_are_kept_apart() {
        let (_dir, log) = open(1);
        log.record("a", "vpn setup", 1).unwrap();
        log.record("ab", "vpn setup", 2).unwrap();
        log.record("ab", "printer", 3).unwrap();
        assert_eq!(listed(&log, "a", None), ["vpn setup x1"]);
        assert_eq!(listed(&log, "ab", None), ["printer x1"]);
    }

    #[test]
    fn chinese_questions_normalise_sensibly() {
        assert_eq!(normalise("年假怎么申请？"), "年假怎么申请");
        assert_eq!(normalise(" 年假 怎么申请 ！"), "年假 怎么申请");
        assert_eq!(normalise("Wi-Fi 密码是多少?"), "wifi 密码是多少");
        let (_dir, log) = open(10);
        log.record("hr", "年假怎么申请？", 1).unwrap();
        log.record("hr", "年假怎么申请", 2).unwrap();
        log.record("hr", "病假怎么申请？", 3).unwrap();
        let expected = ["年假怎么申请？ x2", "病假怎么申请？ x1"];
        assert_eq!(listed(&log, "hr", None), expected);
    }
}
