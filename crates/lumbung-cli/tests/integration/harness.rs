//! The `lumbung` binary as a process on a test's own folders, and its service's status.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `lumbung` binary with the model that `scripts/setup-runtime.sh` installs and no
/// configuration file.
pub fn lumbung_with_model() -> Command {
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
        );
    command
}

/// `lumbung <subcommand>` on the test's folders, with the model.
pub fn lumbung(dir: &Path, subcommand: &str) -> Command {
    let mut command = lumbung_with_model();
    command
        .env("LUMBUNG__INGEST__SETTLE_MS", "0")
        .env("RUST_LOG", "warn")
        .arg(subcommand)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--ingest-root")
        .arg(dir.join("ingest"));
    command
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A service that is killed with SIGKILL when the test ends, whatever happens.
pub struct Service(Child);

impl Service {
    pub fn start(dir: &Path, port: u16) -> Service {
        Service::start_with(dir, port, &[])
    }

    /// With more `LUMBUNG__*` settings.
    pub fn start_with(dir: &Path, port: u16, env: &[(&str, &Path)]) -> Service {
        Service::start_with_args(dir, port, env, &[])
    }

    /// With more `LUMBUNG__*` settings and more arguments of `serve`.
    pub fn start_with_args(dir: &Path, port: u16, env: &[(&str, &Path)], args: &[&str]) -> Service {
        let child = lumbung(dir, "serve")
            .envs(env.iter().copied())
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        Service(child)
    }

    /// SIGKILL: no destructor, no flush, no goodbye.
    pub fn kill(mut self) {
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

/// The knowledge base's status from the service on `port`, asked with `token` when given.
async fn status(port: u16, token: Option<&str>, kb: &str) -> Option<v1::KnowledgeBaseStatus> {
    let mut admin = AdminServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .ok()?;
    let mut request = tonic::Request::new(v1::GetIngestStatusRequest {
        knowledge_base: kb.to_string(),
        include_documents: false,
    });
    if let Some(token) = token {
        let bearer = format!("Bearer {token}").parse().ok()?;
        request.metadata_mut().insert("authorization", bearer);
    }
    let response = admin.get_ingest_status(request).await.ok()?;
    response.into_inner().knowledge_bases.into_iter().next()
}

pub async fn wait_for_status(
    port: u16,
    kb: &str,
    what: &str,
    done: impl Fn(&v1::KnowledgeBaseStatus) -> bool,
) -> v1::KnowledgeBaseStatus {
    wait_for_status_as(port, None, kb, what, done).await
}

/// [`wait_for_status`] on a service with a token file.
pub async fn wait_for_status_as(
    port: u16,
    token: Option<&str>,
    kb: &str,
    what: &str,
    done: impl Fn(&v1::KnowledgeBaseStatus) -> bool,
) -> v1::KnowledgeBaseStatus {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(status) = status(port, token, kb).await
            && done(&status)
        {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: not within 10 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Files of a knowledge-base folder that are documents (all but its `kb.toml`).
pub fn documents_in(kb_dir: &Path) -> usize {
    std::fs::read_dir(kb_dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name() != "kb.toml")
        .count()
}

/// A service with a token file and the HTTP port: gRPC on `grpc`, HTTP on `http`.
pub struct HttpService {
    _service: Service,
    pub grpc: u16,
    pub http: u16,
}

impl HttpService {
    /// Serves `dir`'s folders with `tokens_file`, gRPC and HTTP each on a free port.
    pub fn start(dir: &Path, tokens_file: &Path) -> HttpService {
        let (grpc, http) = (free_port(), free_port());
        let service = Service::start_with_args(
            dir,
            grpc,
            &[("LUMBUNG__SERVER__TOKENS_FILE", tokens_file)],
            &["--http-listen", &format!("127.0.0.1:{http}")],
        );
        HttpService {
            _service: service,
            grpc,
            http,
        }
    }

    /// Waits until `documents` files of `kb` are indexed or failed and nothing is queued.
    pub async fn wait_for_documents(&self, token: &str, kb: &str, documents: usize) {
        wait_for_status_as(self.grpc, Some(token), kb, "the documents", |status| {
            let done =
                status.documents_indexed + status.documents_failed + status.documents_skipped;
            done as usize == documents
                && status.documents_queued == 0
                && status.documents_indexing == 0
        })
        .await;
    }
}

/// Where tests keep what a person looks at afterwards (CI keeps `target/` as its artifact).
pub fn artifacts(what: &str) -> PathBuf {
    let dir = repo_root().join("target").join(what);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The knowledge base the HTTP faces' tests serve (two of its sample articles), and one its
/// reader token must never reach.
pub const HELPDESK: &str = "it-helpdesk";
pub const HIDDEN_KB: &str = "beta";
/// What only the hidden knowledge base holds.
pub const HIDDEN_WORD: &str = "Z-7";
/// Questions the two helpdesk articles answer, and do not.
pub const ANSWERABLE: &str = "How do I fix VPN error 809?";
pub const UNANSWERABLE: &str = "What is on the canteen menu on Friday?";

/// Writes the two helpdesk articles (with the knowledge base's `kb.toml`) and the hidden
/// knowledge base under `dir/ingest`, then serves them with gRPC and HTTP and a token file
/// holding one reader token of the helpdesk, returned; waits until `documents` files of the
/// helpdesk (more may have been written there) are done.
pub async fn serve_helpdesk(dir: &Path, documents: usize) -> (HttpService, String) {
    let samples = repo_root().join("ingest").join(HELPDESK);
    let folder = dir.join("ingest").join(HELPDESK);
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["kb.toml", "vpn-access.md", "password-reset.md"] {
        std::fs::copy(samples.join(file), folder.join(file)).unwrap();
    }
    let hidden = dir.join("ingest").join(HIDDEN_KB);
    std::fs::create_dir_all(&hidden).unwrap();
    let alloys = format!("# Alloys\n\nValve seats use alloy {HIDDEN_WORD}.\n");
    std::fs::write(hidden.join("alloys.md"), alloys).unwrap();
    let (token, entry) =
        lumbung_server::new_token("helpdesk-bot", "reader", &[HELPDESK.into()]).unwrap();
    let tokens_file = dir.join("tokens.toml");
    std::fs::write(&tokens_file, entry).unwrap();
    let service = HttpService::start(dir, &tokens_file);
    service
        .wait_for_documents(&token, HELPDESK, documents)
        .await;
    (service, token)
}
