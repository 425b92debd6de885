//! The gRPC face of lumbung: tonic adapters for `KnowledgeService` and `AdminService`, health
//! checking, reflection, and the wiring that opens the engine from a `Config`.
//!
//! No domain logic lives here: each handler validates, converts, calls the engine and converts
//! back. Errors map to gRPC status codes in one place, `error.rs`.

mod admin;
mod app;
mod auth;
mod cluster;
mod data_dir;
mod error;
mod gaps;
mod http;
mod knowledge;
mod limits;
mod metrics;
mod request;

use std::future::Future;
use std::sync::Arc;

use lumbung_core::NodeRole;
use lumbung_proto::v1::admin_service_server::AdminServiceServer;
use lumbung_proto::v1::knowledge_service_server::KnowledgeServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

pub use app::App;
pub use data_dir::embedded_vectors;

/// How often health checking looks at the watcher.
const HEALTH_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
pub use auth::{Caller, Role, new_token};
pub use error::{Error, Result};
pub use http::mcp::{Knowledge, McpServer};
pub use http::serve_http;
pub use metrics::serve_metrics;
pub use request::REQUEST_ID;

/// Serves both services, health checking and reflection on `listener` until `shutdown`
/// completes.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    // A query node answers assistants; an ingest node serves admins; a single node both.
    let role = app.config.server.role;
    let serves_knowledge = role != NodeRole::Ingest;
    let serves_admin = role != NodeRole::Query;
    let (health, health_service) = tonic_health::server::health_reporter();
    if serves_knowledge {
        health
            .set_serving::<KnowledgeServiceServer<knowledge::KnowledgeApi>>()
            .await;
    }
    if serves_admin {
        health
            .set_serving::<AdminServiceServer<admin::AdminApi>>()
            .await;
    }
    // v1 for current clients (buf curl), v1alpha for older ones (grpcurl).
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(lumbung_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|err| Error::Startup(err.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|err| Error::Startup(err.to_string()))?;

    // Health follows the watcher: an index that no longer follows its folders must not be
    // reported as serving.
    let monitor = {
        let (app, health) = (Arc::downgrade(&app), health.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEALTH_CHECK_EVERY);
            loop {
                every.tick().await;
                let Some(app) = app.upgrade() else {
                    return;
                };
                if !app.ingest_alive() {
                    health
                        .set_not_serving::<KnowledgeServiceServer<knowledge::KnowledgeApi>>()
                        .await;
                    health
                        .set_not_serving::<AdminServiceServer<admin::AdminApi>>()
                        .await;
                    return;
                }
            }
        })
    };
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls_config(&app.config.server).await? {
        builder = builder
            .tls_config(tls)
            .map_err(|err| Error::Startup(format!("TLS: {err}")))?;
    }
    // Without TCP_NODELAY small responses wait for the peer's delayed ACK (about 40 ms).
    tracing::info!(
        addr = %listener.local_addr().map_err(Error::Io)?,
        tls = app.config.server.tls_cert_file.is_some(),
        client_certificates = app.config.server.tls_client_ca_file.is_some(),
        "serving gRPC"
    );
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let max_request_bytes = app.config.server.max_request_bytes;
    let knowledge = serves_knowledge.then(|| {
        KnowledgeServiceServer::new(knowledge::KnowledgeApi::new(Arc::clone(&app)))
            .max_decoding_message_size(max_request_bytes)
    });
    let admin = serves_admin.then(|| {
        AdminServiceServer::new(admin::AdminApi::new(app))
            .max_decoding_message_size(max_request_bytes)
    });
    let served = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_optional_service(knowledge)
        .add_optional_service(admin)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    monitor.abort();
    served.map_err(|err| Error::Startup(err.to_string()))
}

/// The TLS identity (and the CA client certificates must come from) of `server`, read from
/// its PEM files; `None` without `tls_cert_file`.
async fn tls_config(server: &lumbung_core::ServerConfig) -> Result<Option<ServerTlsConfig>> {
    let (Some(cert), Some(key)) = (&server.tls_cert_file, &server.tls_key_file) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        let path = path.to_path_buf();
        async move {
            tokio::fs::read(&path)
                .await
                .map_err(|err| Error::Startup(format!("TLS: {}: {err}", path.display())))
        }
    };
    let identity = Identity::from_pem(read(cert).await?, read(key).await?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &server.tls_client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read(ca).await?));
    }
    Ok(Some(config))
}
