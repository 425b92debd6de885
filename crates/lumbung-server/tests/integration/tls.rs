use std::path::Path;

use lumbung_proto::v1;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::harness;

/// A CA (PEM) and, signed by it, a server certificate for `localhost` and a client
/// certificate, each as (certificate PEM, key PEM).
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn new_pki() -> Pki {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::CommonName, "lumbung test CA");
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: leaf("localhost"),
        client: leaf("helpdesk-bot"),
    }
}

async fn list_over_tls(
    addr: std::net::SocketAddr,
    ca: &str,
    identity: Option<&(String, String)>,
) -> Result<Vec<v1::KnowledgeBase>, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|err| format!("connect: {err:?}"))?;
    KnowledgeServiceClient::new(channel)
        .list_knowledge_bases(v1::ListKnowledgeBasesRequest::default())
        .await
        .map(|response| response.into_inner().knowledge_bases)
        .map_err(|status| format!("{status:?}"))
}

fn write(dir: &Path, name: &str, pem: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// The gRPC port over TLS with a real client: a client that trusts the CA gets answers, one
/// that speaks plain HTTP/2 gets none; with a client CA configured, only a client with a
/// certificate from it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_and_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = new_pki();
    let mut config = harness::test_config(dir.path());
    std::fs::create_dir_all(config.ingest_root.join("it-helpdesk")).unwrap();
    config.server.tls_cert_file = Some(write(dir.path(), "server.pem", &pki.server.0));
    config.server.tls_key_file = Some(write(dir.path(), "server.key", &pki.server.1));

    let server = harness::TestServer::start(config.clone()).await;
    let listed = list_over_tls(server.addr, &pki.ca, None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let plain = async {
        let channel = Channel::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .map_err(|err| format!("{err:?}"))?;
        KnowledgeServiceClient::new(channel)
            .list_knowledge_bases(v1::ListKnowledgeBasesRequest::default())
            .await
            .map_err(|status| format!("{status:?}"))
    };
    assert!(plain.await.is_err(), "plain HTTP/2 is not served");
    let stranger = new_pki();
    assert!(
        list_over_tls(server.addr, &stranger.ca, None)
            .await
            .is_err(),
        "a client that does not trust the server's CA stops"
    );
    server.stop().await;

    config.server.tls_client_ca_file = Some(write(dir.path(), "ca.pem", &pki.ca));
    let server = harness::TestServer::start(config).await;
    assert!(
        list_over_tls(server.addr, &pki.ca, None).await.is_err(),
        "no client certificate"
    );
    assert!(
        list_over_tls(server.addr, &pki.ca, Some(&stranger.client))
            .await
            .is_err(),
        "a client certificate from another CA"
    );
    let listed = list_over_tls(server.addr, &pki.ca, Some(&pki.client))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    server.stop().await;
}
