//! Emptying the write-ahead log of a closed qdrant-edge shard.
//!
//! qdrant-edge 0.7.2 appends every update to `wal/` and never truncates it (the shard has no
//! `ack`), nor replays it on open: what it holds is already in the flushed segments, so an
//! idle store's log only grows. It cannot simply be deleted: the log numbers the operations,
//! each point keeps the number of the operation that last wrote it, and a segment ignores an
//! operation numbered below a point's (`handle_point_version`). A fresh log starts again at
//! 0, and upserts and deletes of existing points would be dropped without an error.
//!
//! So a closed shard's log is replaced by one that holds no entry but starts past every number
//! the old one can have used: a single empty closed segment named `closed-{next}`. On open,
//! the log takes its first index from its closed segments' names and numbers the next
//! operation `next`. `next` is a bound, not the exact count: every entry takes at least
//! [`MIN_ENTRY_BYTES`] of its segment file, so the files' lengths bound the entries they can
//! hold. Skipped numbers cost nothing (they are 64-bit and only compared).
//!
//! The segment file format (from the `wal` crate qdrant-edge vendors, `src/wal/segment.rs`):
//! an 8-byte header, the magic `wal`, format version 0 and a 32-bit CRC seed; entries follow.
//! A file of the header alone holds none.
//!
//! The replacement is built beside the log and swapped in by renames, so that a crash at any
//! point leaves either the old log or the new one ([`recover`] finishes or undoes a swap).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The log's folder in a shard, as qdrant-edge names it.
pub(crate) const WAL_DIR: &str = "wal";
/// The replacement log while it is written.
const NEXT_DIR: &str = "wal.next";
/// The old log between the two renames of the swap.
const OLD_DIR: &str = "wal.old";

/// The fewest bytes an entry takes in a segment file: an 8-byte length header, then the data
/// padded to 8 bytes, then a 4-byte CRC (12 for an empty entry; 8 keeps the bound safe).
const MIN_ENTRY_BYTES: u64 = 8;

/// The header of a segment file that holds no entry: magic, version 0, CRC seed.
const EMPTY_SEGMENT: [u8; 8] = *b"wal\0\x5e\xed\x10\x6b";

/// Finishes or undoes a replacement that a crash interrupted; call before opening the shard.
pub(crate) fn recover(shard_dir: &Path) -> std::io::Result<()> {
    let (wal, next, old) = paths(shard_dir);
    if next.exists() {
        if wal.exists() {
            // Crashed before the swap: the old log is whole.
            fs_err::remove_dir_all(&next)?;
        } else {
            // Crashed between the two renames: the replacement is complete (it was synced
            // before the first).
            fs_err::rename(&next, &wal)?;
            sync_dir(shard_dir)?;
        }
    } else if !wal.exists() && old.exists() {
        // Not reachable by the swap's order; a log is never dropped for want of a rename.
        fs_err::rename(&old, &wal)?;
        sync_dir(shard_dir)?;
    }
    if old.exists() {
        fs_err::remove_dir_all(&old)?;
    }
    Ok(())
}

/// Replaces the log of the closed shard in `shard_dir` by an empty one that goes on numbering
/// past it. The shard's segments must be flushed: the old log's entries are gone afterwards.
/// Returns the number the next operation gets.
pub(crate) fn replace_with_empty(shard_dir: &Path) -> std::io::Result<u64> {
    let (wal, next, old) = paths(shard_dir);
    let next_operation = next_operation_bound(&wal)?;
    if next.exists() {
        fs_err::remove_dir_all(&next)?;
    }
    fs_err::create_dir(&next)?;
    let mut segment = fs_err::File::create(next.join(format!("closed-{next_operation}")))?;
    segment.write_all(&EMPTY_SEGMENT)?;
    segment.sync_all()?;
    sync_dir(&next)?;
    fs_err::rename(&wal, &old)?;
    fs_err::rename(&next, &wal)?;
    sync_dir(shard_dir)?;
    fs_err::remove_dir_all(&old)?;
    Ok(next_operation)
}

/// A number above every operation the log in `wal` has numbered: the last closed segment's
/// first index, plus as many entries as that segment and the open ones could hold.
fn next_operation_bound(wal: &Path) -> std::io::Result<u64> {
    let mut last_closed: Option<(u64, u64)> = None;
    let mut open_bytes = 0u64;
    for entry in fs_err::read_dir(wal)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let bytes = entry.metadata()?.len();
        if let Some(start) = name.strip_prefix("closed-") {
            let start: u64 = start.parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unexpected file {name} in {}", wal.display()),
                )
            })?;
            if last_closed.is_none_or(|(last, _)| start > last) {
                last_closed = Some((start, bytes));
            }
        } else if name.starts_with("open-") {
            open_bytes += bytes;
        }
    }
    let (first_open, closed_bytes) = last_closed.unwrap_or((0, 0));
    Ok(first_open + (closed_bytes + open_bytes) / MIN_ENTRY_BYTES + 1)
}

fn paths(shard_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        shard_dir.join(WAL_DIR),
        shard_dir.join(NEXT_DIR),
        shard_dir.join(OLD_DIR),
    )
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: u64) {
        fs_err::File::create(path).unwrap().set_len(bytes).unwrap();
    }

    #[test]
    fn the_bound_passes_every_entry_the_files_can_hold() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path();
        assert_eq!(next_operation_bound(wal).unwrap(), 1);
        touch(&wal.join("open-1"), 800);
        assert_eq!(next_operation_bound(wal).unwrap(), 101);
        touch(&wal.join("closed-40"), 80);
        touch(&wal.join("closed-7"), 800);
        touch(&wal.join("first-index"), 20);
        assert_eq!(next_operation_bound(wal).unwrap(), 40 + (80 + 800) / 8 + 1);
        touch(&wal.join("closed-x"), 8);
        assert!(next_operation_bound(wal).is_err());
    }

    #[test]
    fn recovery_keeps_a_log_whichever_step_a_crash_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path();
        let (wal, next, old) = paths(shard);
        let marker = |dir: &Path, name: &str| {
            fs_err::create_dir_all(dir).unwrap();
            touch(&dir.join(name), 8);
        };

        // Before the swap: the replacement is dropped.
        marker(&wal, "open-1");
        marker(&next, "closed-9");
        recover(shard).unwrap();
        assert!(wal.join("open-1").exists() && !next.exists());

        // Between the renames: the replacement is taken.
        fs_err::rename(&wal, &old).unwrap();
        marker(&next, "closed-9");
        recover(shard).unwrap();
        assert!(wal.join("closed-9").exists() && !next.exists() && !old.exists());

        // After the swap, before the old log was removed.
        marker(&old, "open-1");
        recover(shard).unwrap();
        assert!(wal.join("closed-9").exists() && !old.exists());
    }
}
