use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;

const KB: &str = "work-instructions";
const DOCUMENTS: u32 = 240;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `lumbung <subcommand>` on the test's folders, with the model that
/// `scripts/setup-runtime.sh` installs.
fn lumbung(dir: &Path, subcommand: &str) -> Command {
    let runtime = repo_root().join("runtime");
    assert!(
        runtime.exists(),
        "{} is missing: run scripts/setup-runtime.sh first",
        runtime.display()
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_lumbung"));
    command
        .env_remove("LUMBUNG_CONFIG")
        .env(
            "LUMBUNG__EMBEDDING__MODEL_DIR",
            runtime.join("models/multilingual-e5-small"),
        )
        .env(
            "LUMBUNG__EMBEDDING__ONNXRUNTIME_LIBRARY",
            runtime.join("onnxruntime/libonnxruntime.so"),
        )
        .env("LUMBUNG__INGEST__SETTLE_MS", "0")
        .env("RUST_LOG", "warn")
        .arg(subcommand)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--ingest-root")
        .arg(dir.join("ingest"));
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service that is killed with SIGKILL when the test ends, whatever happens.
struct Service(Child);

impl Service {
    fn start(dir: &Path, port: u16) -> Service {
        let child = lumbung(dir, "serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Service(child)
    }

    /// SIGKILL: no destructor, no flush, no goodbye.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn status(port: u16) -> Option<v1::KnowledgeBaseStatus> {
    let mut admin = AdminServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .ok()?;
    let response = admin
        .get_ingest_status(v1::GetIngestStatusRequest {
            knowledge_base: KB.to_string(),
            include_documents: false,
        })
        .await
        .ok()?;
    response.into_inner().knowledge_bases.into_iter().next()
}

async fn wait_for_status(
    port: u16,
    what: &str,
    done: impl Fn(&v1::KnowledgeBaseStatus) -> bool,
) -> v1::KnowledgeBaseStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = status(port).await
            && done(&status)
        {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
    let at_kill = wait_for_status(port, "the first commits", |s| s.documents_indexed >= 20).await;
    first.kill();
    assert!(
        at_kill.documents_indexed < DOCUMENTS,
        "the ingest finished before the kill: {at_kill:?}"
    );

    let port = free_port();
    let second = Service::start(dir.path(), port);
    let done = wait_for_status(port, "every document after the restart", |s| {
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
