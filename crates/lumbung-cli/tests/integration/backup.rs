//! `lumbung backup` from a running service while it ingests, `lumbung restore` into another
//! data directory (another machine, as far as lumbung can tell), `lumbung check` there, and the
//! same top passages for the sample questions.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;

use crate::harness::{
    Service, copy_dir, free_port, lumbung, lumbung_with_model, repo_root, wait_for_status,
};

const SAMPLE_KBS: [&str; 3] = ["it-helpdesk", "safety-zh", "production-data"];
const BULK: &str = "bulk";
/// Documents of the new knowledge base before the backup; more arrive while it is taken.
const BULK_DOCUMENTS: u32 = 100;
/// How often a new document arrives while the backup is taken.
const ARRIVAL: Duration = Duration::from_millis(25);

/// The sample questions, every third one, with the knowledge base each is asked of.
fn questions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("eval/samples/queries.jsonl")).unwrap();
    text.lines()
        .step_by(3)
        .map(|line| {
            let query: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                query["text"].as_str().unwrap().to_string(),
                query["knowledge_base"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The top passage (document and text) for each question.
async fn top_passages(port: u16, questions: &[(String, String)]) -> Vec<Option<(String, String)>> {
    let mut client = KnowledgeServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut tops = Vec::with_capacity(questions.len());
    for (question, kb) in questions {
        let response = client
            .search(v1::SearchRequest {
                query: question.clone(),
                knowledge_bases: vec![kb.clone()],
                top_k: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tops.push(
            response
                .passages
                .into_iter()
                .next()
                .map(|p| (p.citation.unwrap().document_path, p.text)),
        );
    }
    tops
}

fn write_work_instruction(kb_dir: &Path, i: u32) {
    std::fs::write(
        kb_dir.join(format!("wi-{i:04}.md")),
        format!(
            "# Work instruction WI-{i:04}\n\nCheck the torque of bolt group {i} on press \
             P-{} to {} Nm, log it on sheet WI-{i:04}, and report readings outside tolerance \
             to the shift leader.\n",
            i % 9,
            40 + i
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_ingest_restores_elsewhere_with_the_same_answers() {
    let source = tempfile::tempdir().unwrap();
    for kb in SAMPLE_KBS {
        copy_dir(
            &repo_root().join("ingest").join(kb),
            &source.path().join("ingest").join(kb),
        );
    }
    let port = free_port();
    let service = Service::start(source.path(), port);
    for kb in SAMPLE_KBS {
        wait_for_status(port, kb, "the samples indexed", |s| {
            s.documents_indexed > 0 && s.documents_queued == 0 && s.documents_indexing == 0
        })
        .await;
    }
    // A new knowledge base arrives, and goes on receiving documents while the backup is
    // taken, so that ingest runs throughout.
    let bulk_dir = source.path().join("ingest").join(BULK);
    std::fs::create_dir_all(&bulk_dir).unwrap();
    for i in 0..BULK_DOCUMENTS {
        write_work_instruction(&bulk_dir, i);
    }
    wait_for_status(port, BULK, "the bulk ingest under way", |s| {
        s.documents_indexed >= 1
    })
    .await;
    let written = Arc::new(AtomicU32::new(BULK_DOCUMENTS));
    let stop = Arc::new(AtomicBool::new(false));
    let arrivals = {
        let (written, stop, bulk_dir) = (Arc::clone(&written), Arc::clone(&stop), bulk_dir.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                write_work_instruction(&bulk_dir, written.fetch_add(1, Ordering::SeqCst));
                std::thread::sleep(ARRIVAL);
            }
        })
    };
    let backup_dir = source.path().join("backup");
    let backup = lumbung_with_model()
        .arg("backup")
        .arg(&backup_dir)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let arrived = written.load(Ordering::SeqCst);
    let at_backup_end = wait_for_status(port, BULK, "the status after the backup", |_| true).await;
    stop.store(true, Ordering::SeqCst);
    arrivals.join().unwrap();
    assert!(backup.status.success(), "{backup:?}");
    let written = written.load(Ordering::SeqCst);
    assert!(
        at_backup_end.documents_indexed < arrived
            || at_backup_end.documents_queued + at_backup_end.documents_indexing > 0,
        "ingest should still have been under way when the backup ended ({arrived} documents \
         had arrived): {at_backup_end:?}"
    );
    // Compared once both sides hold every document: BM25 weighs terms by the whole index.
    wait_for_status(port, BULK, "the bulk ingest done", |s| {
        s.documents_indexed == written
    })
    .await;
    let questions = questions();
    let before = top_passages(port, &questions).await;
    assert!(before.iter().filter(|top| top.is_some()).count() > questions.len() / 2);
    service.kill();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "lumbung-backup");
    assert_eq!(manifest["version"], 2);
    for kb in manifest["knowledge_bases"].as_array().unwrap() {
        assert_eq!(kb["model"], "multilingual-e5-small", "{kb}");
        assert_eq!(kb["dimension"], 384, "{kb}");
    }
    let bulk_backed_up = manifest["knowledge_bases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kb| kb["name"] == BULK)
        .map(|kb| kb["documents"].as_u64().unwrap())
        .unwrap();
    assert!(
        (1..u64::from(written)).contains(&bulk_backed_up),
        "the backup holds the documents indexed when it read the knowledge base, not those \
         that arrived later: {bulk_backed_up} of {written}"
    );

    // Elsewhere: the same folders, the backup restored, checked, and serving.
    let target = tempfile::tempdir().unwrap();
    copy_dir(&source.path().join("ingest"), &target.path().join("ingest"));
    let restore = lumbung(target.path(), "restore")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(restore.status.success(), "{restore:?}");
    let check = lumbung(target.path(), "check").output().unwrap();
    let printed = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{printed}");
    for kb in SAMPLE_KBS {
        assert!(printed.contains(&format!("{kb}: consistent")), "{printed}");
    }
    assert!(
        printed.contains(&format!(
            "{BULK}: consistent ({bulk_backed_up} documents indexed"
        )),
        "{printed}"
    );
    // Restoring twice into the same data directory is refused.
    let again = lumbung(target.path(), "restore")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds knowledge bases"),
        "{again:?}"
    );

    let port = free_port();
    let restored = Service::start(target.path(), port);
    // The rest of the folder is ingested there, from where the backup stood.
    wait_for_status(port, BULK, "the restored service's bulk ingest done", |s| {
        s.documents_indexed == written
    })
    .await;
    let after = top_passages(port, &questions).await;
    for ((question, kb), (was, is)) in questions.iter().zip(before.iter().zip(&after)) {
        assert_eq!(was, is, "{kb}: {question}");
    }
    restored.kill();
}
