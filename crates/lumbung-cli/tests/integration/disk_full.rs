//! The service on a data directory whose disk fills up: a 64 MiB tmpfs mounted in a mount
//! namespace of its own (`unshare`), so the test needs no privilege and leaves nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;

use crate::harness::{copy_dir, free_port, lumbung_with_model, repo_root, wait_for_status};

const KB: &str = "it-helpdesk";
/// The tmpfs the data directory is on.
const DISK_MIB: u64 = 64;
/// `ingest.min_free_disk_mib` for the test.
const RESERVE_MIB: u64 = 24;
const MIB: u64 = 1 << 20;

/// Mounts the tmpfs over the data directory, serves until SIGINT, then runs `lumbung check`
/// on what the service left, in the same namespace (the tmpfs goes with it).
const SCRIPT: &str = r#"
mount -t tmpfs -o size="$DISK" tmpfs "$DATA" || exit 97
"$LUMBUNG" serve --data-dir "$DATA" --ingest-root "$INGEST" --listen "127.0.0.1:$PORT"
"$LUMBUNG" check --data-dir "$DATA" --ingest-root "$INGEST" > "$CHECK" 2>&1
echo "check exit $?" >> "$CHECK"
"#;

/// The service in its namespace; killed with the namespace when dropped.
struct OnSmallDisk {
    shell: Child,
    data: PathBuf,
}

impl OnSmallDisk {
    fn start(dir: &Path, port: u16) -> OnSmallDisk {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let model = lumbung_with_model();
        let mut command = Command::new("unshare");
        for (key, value) in model.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        let shell = command
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT])
            .env("DISK", format!("{DISK_MIB}m"))
            .env("DATA", &data)
            .env("INGEST", dir.join("ingest"))
            .env("PORT", port.to_string())
            .env("CHECK", dir.join("check.txt"))
            .env("LUMBUNG", model.get_program())
            .env("LUMBUNG__INGEST__SETTLE_MS", "0")
            .env(
                "LUMBUNG__INGEST__MIN_FREE_DISK_MIB",
                RESERVE_MIB.to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) runs the service in a mount namespace of its own");
        OnSmallDisk { shell, data }
    }

    /// The data directory as the service sees it: through its process's root, which is in
    /// its mount namespace.
    fn data(&self) -> PathBuf {
        Path::new(&format!("/proc/{}/root", self.shell.id()))
            .join(self.data.strip_prefix("/").unwrap())
    }

    fn free_bytes(&self) -> u64 {
        lumbung_core::disk::available_bytes(&self.data()).unwrap()
    }

    /// SIGINT to the service (the shell's child), then the check it runs after; returns
    /// what the check printed.
    fn stop_and_check(mut self, dir: &Path) -> String {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.shell.id()))
                .unwrap();
        let service = children
            .split_whitespace()
            .next()
            .expect("the service runs");
        let sent = Command::new("kill")
            .args(["-INT", service])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.shell.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the service and its check took over 5 minutes"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::read_to_string(dir.join("check.txt")).unwrap()
    }
}

impl Drop for OnSmallDisk {
    fn drop(&mut self) {
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.shell.id()))
        {
            for child in children.split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", child]).status();
            }
        }
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// Writes `file` until the disk has at most `leave` bytes free, or is full (`leave` 0).
fn fill(file: &Path, leave: u64, free: impl Fn() -> u64) {
    let mut filler = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .unwrap();
    let block = vec![0x5au8; 256 << 10];
    loop {
        let left = free();
        if left <= leave {
            return;
        }
        let size = (left - leave).min(block.len() as u64) as usize;
        match filler.write_all(&block[..size.max(4096).min(block.len())]) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(28) => {
                assert_eq!(leave, 0, "the disk filled before {leave} bytes were left");
                return;
            }
            Err(err) => panic!("filling the disk: {err}"),
        }
        filler.sync_data().unwrap();
    }
}

async fn search(port: u16, query: &str) -> Vec<v1::Passage> {
    let mut client = KnowledgeServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    client
        .search(v1::SearchRequest {
            query: query.to_string(),
            knowledge_bases: vec![KB.to_string()],
            top_k: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .passages
}

async fn ask(port: u16, question: &str) -> v1::AskResponse {
    let mut client = KnowledgeServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    client
        .ask(v1::AskRequest {
            question: question.to_string(),
            knowledge_bases: vec![KB.to_string()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn cites(passages: &[v1::Passage], document: &str) -> bool {
    passages.iter().any(|p| {
        p.citation
            .as_ref()
            .is_some_and(|c| c.document_path == document)
    })
}

/// Below `ingest.min_free_disk_mib` the service writes no new or changed document and says
/// why in the status, still applies removals, and keeps answering; with the disk completely
/// full (ENOSPC on every write) it still answers Search and Ask; once space is freed the
/// waiting files are indexed, and `lumbung check` finds both indexes consistent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_pauses_ingest_and_the_service_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let kb_dir = dir.path().join("ingest").join(KB);
    copy_dir(&repo_root().join("ingest").join(KB), &kb_dir);
    let documents = crate::harness::documents_in(&kb_dir) as u32;
    let port = free_port();
    let service = OnSmallDisk::start(dir.path(), port);
    let indexed = wait_for_status(port, KB, "the knowledge base indexed", |s| {
        s.documents_indexed == documents && s.documents_queued == 0 && s.documents_indexing == 0
    })
    .await;
    assert!(indexed.ingest_paused.is_empty(), "{indexed:?}");
    let used = DISK_MIB * MIB - service.free_bytes();
    println!(
        "{documents} documents, {} chunks: {:.1} MiB of the disk",
        indexed.chunks,
        used as f64 / MIB as f64
    );

    // Below the reserve: a new document waits, a removed one goes.
    let filler = service.data().join("filler");
    fill(&filler, (RESERVE_MIB - 8) * MIB, || service.free_bytes());
    std::fs::write(
        kb_dir.join("forklift-badge.md"),
        "# Forklift badge renewal\n\nForklift badges are renewed at the security office in \
         building K7 every 24 months; bring the refresher course certificate.\n",
    )
    .unwrap();
    std::fs::remove_file(kb_dir.join("printer-setup.md")).unwrap();
    let paused = wait_for_status(port, KB, "the removal applied while ingest waits", |s| {
        s.documents_indexed == documents - 1 && !s.ingest_paused.is_empty()
    })
    .await;
    assert!(
        paused.ingest_paused.contains("min_free_disk_mib"),
        "{paused:?}"
    );
    assert!(!cites(
        &search(port, "add a network printer").await,
        "printer-setup.md"
    ));
    assert!(cites(
        &search(port, "GlobalProtect VPN portal address").await,
        "vpn-access.md"
    ));

    // Full: every write fails with ENOSPC, and the service still answers.
    fill(&filler, 0, || service.free_bytes());
    assert!(
        service.free_bytes() < MIB,
        "{} bytes free",
        service.free_bytes()
    );
    std::fs::write(
        kb_dir.join("vpn-access.md"),
        "# VPN\n\nAsk the service desk.\n",
    )
    .unwrap();
    for _ in 0..3 {
        assert!(cites(
            &search(port, "GlobalProtect VPN portal address").await,
            "vpn-access.md"
        ));
        // A question handed off is recorded in the gap log, whose write fails.
        let answer = ask(port, "What is the canteen menu on Friday?").await;
        assert_eq!(answer.status(), v1::AnswerStatus::NoAnswer, "{answer:?}");
        let answer = ask(port, "What is the VPN portal address?").await;
        assert_ne!(answer.status(), v1::AnswerStatus::Unspecified, "{answer:?}");
    }
    let full = wait_for_status(port, KB, "the status on a full disk", |s| {
        !s.ingest_paused.is_empty()
    })
    .await;
    assert_eq!(full.documents_failed, 0, "{full:?}");
    let passages = search(port, "GlobalProtect VPN portal address").await;
    assert!(
        cites(&passages, "vpn-access.md"),
        "the old version is still served: {passages:?}"
    );

    // Space freed: what waited is indexed.
    std::fs::remove_file(&filler).unwrap();
    let resumed = wait_for_status(port, KB, "the waiting files indexed", |s| {
        s.ingest_paused.is_empty()
            && s.documents_indexed == documents
            && s.documents_queued == 0
            && s.documents_indexing == 0
    })
    .await;
    assert_eq!(resumed.documents_failed, 0, "{resumed:?}");
    assert!(cites(
        &search(port, "forklift badge renewal security office").await,
        "forklift-badge.md"
    ));
    // The gap log, whose writes failed while the disk was full, records again.
    let unanswered = "Who repairs the coffee machine on the third floor?";
    assert_eq!(
        ask(port, unanswered).await.status(),
        v1::AnswerStatus::NoAnswer
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let gaps = AdminServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .unwrap()
            .list_gaps(v1::ListGapsRequest {
                knowledge_base: KB.to_string(),
                since: None,
            })
            .await
            .unwrap()
            .into_inner()
            .gaps;
        if gaps.iter().any(|gap| gap.question == unanswered) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gap is not recorded: {gaps:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let check = service.stop_and_check(dir.path());
    assert!(check.contains(&format!("{KB}: consistent")), "{check}");
    assert!(check.contains("check exit 0"), "{check}");
}
