use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::harness;

#[tokio::test]
async fn reflection_lists_every_service() {
    let mut reflection = ServerReflectionClient::new(harness::channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "lumbung.v1.KnowledgeService",
        "lumbung.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}

#[tokio::test]
async fn health_reports_the_knowledge_service_serving() {
    let mut health = HealthClient::new(harness::channel().await);
    let status = health
        .check(HealthCheckRequest {
            service: "lumbung.v1.KnowledgeService".to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);
}

/// Health follows the watcher: once the flag its thread clears when it dies is down (set
/// here by hand, since nothing in a healthy folder makes it die), the knowledge service is
/// reported NOT_SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_not_serving_when_the_watcher_is_reported_dead() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    std::fs::create_dir_all(config.ingest_root.join("it")).unwrap();
    let server = harness::TestServer::start(config).await;
    let watcher = server.app.watch().unwrap();
    let check = || async {
        HealthClient::new(harness::connect(server.addr).await)
            .check(HealthCheckRequest {
                service: "lumbung.v1.KnowledgeService".to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .status
    };
    assert_eq!(check().await, ServingStatus::Serving as i32);
    watcher
        .liveness()
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while check().await != ServingStatus::NotServing as i32 {
        assert!(std::time::Instant::now() < deadline, "still SERVING");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    tokio::task::spawn_blocking(move || drop(watcher))
        .await
        .unwrap();
    server.stop().await;
}
