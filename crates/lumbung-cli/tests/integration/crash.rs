use std::path::Path;

use crate::harness::{Service, free_port, lumbung, wait_for_status};

const KB: &str = "work-instructions";
const DOCUMENTS: u32 = 240;

/// Work instructions of one to four chunks, each with its own words.
fn write_documents(kb_dir: &Path) {
    std::fs::create_dir_all(kb_dir).unwrap();
    for i in 0..DOCUMENTS {
        let mut text = format!("# Work instruction WI-{i:04}\n\n");
        let paragraphs = 1 + (i % 4) * 3;
        for p in 0..paragraphs {
            text.push_str(&format!(
                "Step {p} for machine M-{i}: check the torque of bolt group {p} to {} Nm, log the \
                 value on sheet WI-{i:04}-{p}, and report any reading outside tolerance to the \
                 shift leader of line {} before the next cycle starts.\n\n",
                40 + p,
                i % 7
            ));
        }
        std::fs::write(kb_dir.join(format!("wi-{i:04}.md")), text).unwrap();
    }
}

/// `kill -9` in the middle of ingesting a few hundred files, then a restart: every document is
/// indexed once, and both indexes hold exactly the chunks the catalog records for each one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_documents(&dir.path().join("ingest").join(KB));

    let port = free_port();
    let first = Service::start(dir.path(), port);
    let at_kill =
        wait_for_status(port, KB, "the first commits", |s| s.documents_indexed >= 20).await;
    first.kill();
    assert!(
        at_kill.documents_indexed < DOCUMENTS,
        "the ingest finished before the kill: {at_kill:?}"
    );

    let port = free_port();
    let second = Service::start(dir.path(), port);
    let done = wait_for_status(port, KB, "every document after the restart", |s| {
        s.documents_indexed == DOCUMENTS && s.documents_queued == 0 && s.documents_indexing == 0
    })
    .await;
    assert_eq!(done.documents_failed, 0, "{done:?}");
    second.kill();

    let check = lumbung(dir.path(), "check").output().unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        stdout.contains(&format!("{KB}: consistent ({DOCUMENTS} documents indexed")),
        "{stdout}"
    );
}
