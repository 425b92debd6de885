use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use lumbung_core::IngestConfig;
use lumbung_ingest::Watcher;

use crate::{Fixture, kb};

fn recorded(fixture: &Fixture, name: &str, path: &str) -> bool {
    let records = fixture
        .ingestor
        .catalog()
        .list(&fixture.active(name))
        .unwrap();
    records.iter().any(|r| r.path.as_str() == path)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within a minute");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn set_mtime(path: &Path, ago: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

/// A file is taken only once it has stopped changing: one written just now waits for the
/// settle time while one that has not changed for an hour is indexed at once.
#[test]
fn files_still_changing_wait_until_they_settle() {
    let settle = Duration::from_secs(6);
    let fixture = Fixture::new(IngestConfig {
        settle_ms: settle.as_millis() as u64,
        ..IngestConfig::default()
    });
    let dir = fixture.kb_dir("line");
    std::fs::write(dir.join("old.md"), "# Old\n\nLine 1 runs two shifts.\n").unwrap();
    set_mtime(&dir.join("old.md"), Duration::from_secs(3600));
    std::fs::write(
        dir.join("young.md"),
        "# Young\n\nLine 2 runs three shifts.\n",
    )
    .unwrap();
    let written = Instant::now();

    let watcher = Watcher::start(fixture.ingestor.clone()).unwrap();
    wait_for("the settled file", || recorded(&fixture, "line", "old.md"));
    let young_seen_early = recorded(&fixture, "line", "young.md");
    let checked_at = written.elapsed();
    assert!(
        checked_at >= settle || !young_seen_early,
        "young.md was taken {checked_at:?} after it was written"
    );
    wait_for("the young file once settled", || {
        recorded(&fixture, "line", "young.md")
    });
    assert!(written.elapsed() >= settle);
    drop(watcher);
    assert!(fixture.ingestor.verify(&kb("line")).unwrap().is_empty());
}

/// With watching off, the periodic reconcile alone still finds new files.
#[test]
fn the_periodic_reconcile_finds_changes_without_events() {
    let fixture = Fixture::new(IngestConfig {
        watch: false,
        settle_ms: 0,
        reconcile_interval_seconds: 1,
        ..IngestConfig::default()
    });
    let dir = fixture.kb_dir("line");
    let watcher = Watcher::start(fixture.ingestor.clone()).unwrap();
    std::fs::write(dir.join("late.md"), "# Late\n\nLine 3 stops at noon.\n").unwrap();
    wait_for("the file found by the reconcile", || {
        recorded(&fixture, "line", "late.md")
    });
    drop(watcher);
}
