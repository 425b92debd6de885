use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use lumbung_core::Config;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use lumbung_server::App;
use tonic::transport::Channel;

/// Sample knowledge bases every test sees.
pub const SAMPLE_KBS: [&str; 3] = ["it-helpdesk", "safety-zh", "production-data"];

/// One server for the whole test binary: loading the model and ingesting the samples once keeps
/// the suite fast. It runs on its own runtime so that it outlives each test's runtime.
pub struct SharedServer {
    pub addr: SocketAddr,
    /// The HTTP port, without a token file (loopback's local administrator).
    pub http: SocketAddr,
    pub ingest_root: PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The configuration of a fresh data directory and ingest root inside `dir`, with the model
/// that `scripts/setup-runtime.sh` installs.
pub fn test_config(dir: &Path) -> Config {
    let runtime = repo_root().join("runtime");
    assert!(
        runtime.exists(),
        "{} is missing: run scripts/setup-runtime.sh first",
        runtime.display()
    );
    let mut config = Config {
        data_dir: dir.join("data"),
        ingest_root: dir.join("ingest"),
        ..Config::default()
    };
    config.embedding.model_dir = repo_root().join(&config.embedding.model_dir);
    config.embedding.onnxruntime_library = repo_root().join(&config.embedding.onnxruntime_library);
    // Watched folders are synced this long after their last change.
    config.ingest.settle_ms = 300;
    config
}

/// A server of the caller's own, on the caller's runtime.
pub struct TestServer {
    pub app: Arc<App>,
    /// gRPC.
    pub addr: SocketAddr,
    /// The HTTP port (JSON API, Dify, MCP, console).
    pub http: SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<lumbung_server::Result<()>>,
    http_task: tokio::task::JoinHandle<lumbung_server::Result<()>>,
}

impl TestServer {
    /// Opens an engine on `config` and serves gRPC and HTTP on ports of 127.0.0.1:0.
    pub async fn start(config: Config) -> TestServer {
        let app = Arc::new(
            tokio::task::spawn_blocking(move || App::open(config))
                .await
                .unwrap()
                .unwrap(),
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(lumbung_server::serve(
            Arc::clone(&app),
            listener,
            shutdown.clone().cancelled_owned(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let http_task = tokio::spawn(lumbung_server::serve_http(
            Arc::clone(&app),
            listener,
            shutdown.clone().cancelled_owned(),
        ));
        TestServer {
            app,
            addr,
            http,
            shutdown,
            task,
            http_task,
        }
    }

    /// Stops serving and closes the engine, so that its folders can be removed.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.http_task.await.unwrap().unwrap();
        let app = self.app;
        tokio::task::spawn_blocking(move || drop(app))
            .await
            .unwrap();
    }
}

pub async fn connect(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// Writes one document into knowledge base `kb` of `config`'s ingest root.
pub fn write_document(config: &Config, kb: &str, path: &str, text: &str) {
    let folder = config.ingest_root.join(kb);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(path), text).unwrap();
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
pub fn documents_on_disk_in(kb_dir: &Path) -> usize {
    std::fs::read_dir(kb_dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().file_name() != lumbung_ingest::SETTINGS_FILE)
        .count()
}

/// Documents of a sample knowledge base in the shared server's ingest root.
pub fn documents_on_disk(kb: &str) -> usize {
    documents_on_disk_in(&shared_server().ingest_root.join(kb))
}

pub fn shared_server() -> &'static SharedServer {
    static SERVER: OnceLock<SharedServer> = OnceLock::new();
    // Built on a plain thread: tests call this from inside their own runtime, where blocking on
    // another runtime is not allowed.
    SERVER.get_or_init(|| std::thread::spawn(start_shared_server).join().unwrap())
}

fn start_shared_server() -> SharedServer {
    {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        // The shared server also serves hybrid_rerank; servers of test_config alone do not.
        config.rerank.enabled = true;
        config.rerank.model_dir = repo_root().join(&config.rerank.model_dir);
        for kb in SAMPLE_KBS {
            copy_dir(
                &repo_root().join("ingest").join(kb),
                &config.ingest_root.join(kb),
            );
        }
        let ingest_root = config.ingest_root.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (addr, http) = runtime.block_on(async move {
            let app = Arc::new(
                tokio::task::spawn_blocking(move || App::open(config))
                    .await
                    .unwrap()
                    .unwrap(),
            );
            let report = app.sync_all().await.unwrap();
            assert_eq!(report.failed, 0, "sample documents failed: {report:?}");
            assert!(
                report.indexed >= SAMPLE_KBS.len(),
                "too few documents: {report:?}"
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http = http_listener.local_addr().unwrap();
            tokio::spawn(lumbung_server::serve_http(
                Arc::clone(&app),
                http_listener,
                std::future::pending(),
            ));
            tokio::spawn(lumbung_server::serve(app, listener, std::future::pending()));
            (addr, http)
        });
        SharedServer {
            addr,
            http,
            ingest_root,
            _dir: dir,
            _runtime: runtime,
        }
    }
}

pub async fn channel() -> Channel {
    connect(shared_server().addr).await
}

pub async fn knowledge() -> KnowledgeServiceClient<Channel> {
    KnowledgeServiceClient::new(channel().await)
}

pub async fn admin() -> AdminServiceClient<Channel> {
    AdminServiceClient::new(channel().await)
}

/// Polls `check` every 100 ms until it holds; fails the test naming `what` after `patience`.
pub async fn eventually<F, Fut>(what: &str, patience: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + patience;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not seen within {patience:?}");
}
