use std::path::Path;
use std::time::Duration;

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;

use crate::harness::{Service, free_port, lumbung, wait_for_status};

const KB: &str = "work-instructions";
const DOCUMENTS: u32 = 240;

/// Work instructions of one to four chunks, each with its own words.
fn write_documents(kb_dir: &Path, count: u32) {
    std::fs::create_dir_all(kb_dir).unwrap();
    for i in 0..count {
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
    write_documents(&dir.path().join("ingest").join(KB), DOCUMENTS);

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

/// Documents of the knowledge base rebuilt under `kill -9`.
const REBUILT_DOCUMENTS: u32 = 60;

/// `lumbung check` on the test's folders, which must pass; returns what it printed.
fn check_passes(dir: &Path) -> String {
    let check = lumbung(dir, "check").output().unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout).into_owned();
    assert!(
        check.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    stdout
}

/// Passages for a question every generation of the knowledge base answers.
async fn passages(port: u16) -> usize {
    let mut client = KnowledgeServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    client
        .search(v1::SearchRequest {
            query: "torque of bolt group 2 on machine M-17".to_string(),
            knowledge_bases: vec![KB.to_string()],
            top_k: 3,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .passages
        .len()
}

/// `kill -9` at random points of a reindex (building, swapping or retiring), a restart after
/// each: a whole generation serves every time, `lumbung check` passes between runs, an
/// interrupted rebuild is resumed, and after the last restart it ends with one generation and
/// nothing left of the others. `LUMBUNG_REINDEX_KILLS` sets the number of kills (3 in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_reindex_leaves_one_whole_generation_serving() {
    let kills: u32 = std::env::var("LUMBUNG_REINDEX_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    write_documents(&dir.path().join("ingest").join(KB), REBUILT_DOCUMENTS);
    let ingest = lumbung(dir.path(), "ingest").output().unwrap();
    assert!(ingest.status.success(), "{ingest:?}");
    check_passes(dir.path());

    // A small generator of kill times, seeded from the clock and printed, so that a failing
    // sequence can be told apart from a passing one.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("kill times seeded with {seed}");
    let mut next_delay_ms = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        100 + seed % 8_000
    };
    let retire = [("LUMBUNG__INGEST__RETIRE_AFTER_MS", Path::new("300"))];
    for kill in 0..kills {
        let port = free_port();
        let service = Service::start_with(dir.path(), port, &retire);
        let status = wait_for_status(port, KB, "the service after a restart", |_| true).await;
        assert_eq!(status.documents_indexed, REBUILT_DOCUMENTS, "{status:?}");
        assert!(passages(port).await > 0, "no passages after kill {kill}");
        let resumed = status
            .job
            .as_ref()
            .is_some_and(|job| job.state() == v1::JobState::Running);
        if !resumed {
            let mut admin = AdminServiceClient::connect(format!("http://127.0.0.1:{port}"))
                .await
                .unwrap();
            admin
                .reindex(v1::ReindexRequest {
                    knowledge_base: KB.to_string(),
                })
                .await
                .unwrap();
        }
        let delay = next_delay_ms();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let at_kill = wait_for_status(port, KB, "the status before the kill", |_| true).await;
        service.kill();
        let printed = check_passes(dir.path());
        println!(
            "kill {kill} after {delay} ms (job {:?}): {}",
            at_kill
                .job
                .map(|job| (job.phase().as_str_name().to_string(), job.id)),
            printed.trim()
        );
    }

    let port = free_port();
    let service = Service::start_with(dir.path(), port, &retire);
    let done = wait_for_status(port, KB, "the last rebuild ended", |s| {
        s.building_generation == 0
            && s.job.as_ref().is_none_or(|job| {
                job.state() != v1::JobState::Running && job.phase() == v1::JobPhase::Ended
            })
    })
    .await;
    assert_eq!(done.documents_indexed, REBUILT_DOCUMENTS, "{done:?}");
    assert!(passages(port).await > 0);
    // The last swap's predecessor is deleted after retire_after_ms.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    service.kill();
    let printed = check_passes(dir.path());
    assert!(
        printed.contains(&format!(
            "{KB}: consistent ({REBUILT_DOCUMENTS} documents indexed"
        )),
        "{printed}"
    );
}
