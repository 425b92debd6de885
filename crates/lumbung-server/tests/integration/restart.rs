use std::sync::Arc;

use lumbung_server::App;

use crate::harness;

/// A restart must not re-embed what is already indexed, and a file deleted while the service
/// was down must be gone from both indexes after the next sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reembeds_nothing_and_removes_deleted_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    let kb_dir = config.ingest_root.join("it-helpdesk");
    harness::copy_dir(&harness::repo_root().join("ingest/it-helpdesk"), &kb_dir);
    let files = harness::documents_on_disk_in(&kb_dir);

    let open = |config| async move {
        Arc::new(
            tokio::task::spawn_blocking(move || App::open(config))
                .await
                .unwrap()
                .unwrap(),
        )
    };
    let first = open(config.clone()).await;
    let report = first.sync_all().await.unwrap();
    assert_eq!((report.indexed, report.unchanged), (files, 0), "{report:?}");
    drop(first);

    std::fs::remove_file(kb_dir.join("vpn-access.md")).unwrap();
    let second = open(config).await;
    let report = second.sync_all().await.unwrap();
    assert_eq!(
        (report.indexed, report.unchanged, report.removed),
        (0, files - 1, 1),
        "{report:?}"
    );

    let request = lumbung_search::SearchRequest {
        query: "GlobalProtect certificate expired ERR-VPN-809".to_string(),
        scope: second
            .scope(
                &lumbung_server::Caller::local_admin(),
                &[],
                "knowledge_bases",
            )
            .unwrap(),
        top_k: 50,
        retriever: lumbung_search::Retriever::Hybrid,
    };
    let passages = second.engine.search(&request).await.unwrap();
    assert!(!passages.is_empty());
    assert!(
        passages
            .iter()
            .all(|p| p.chunk.citation.document_path.as_str() != "vpn-access.md")
    );
}

/// `SetAnswerDecision` takes effect from the next question and survives a restart: parameters
/// that never answer (a very negative bias) turn an answered question into a hand-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_decision_is_used_at_once_and_kept_across_restarts() {
    use lumbung_proto::v1;
    use lumbung_proto::v1::admin_service_client::AdminServiceClient;
    use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;

    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    harness::write_document(
        &config,
        "it",
        "passwords.md",
        "# Passwords\n\nA new password must have at least 14 characters.\n",
    );
    let ask = |addr| async move {
        let mut client = KnowledgeServiceClient::new(harness::connect(addr).await);
        client
            .ask(v1::AskRequest {
                question: "How many characters must a password have?".into(),
                knowledge_bases: vec!["it".into()],
                max_sentences: 1,
            })
            .await
            .unwrap()
            .into_inner()
    };

    let server = harness::TestServer::start(config.clone()).await;
    server.app.sync_all().await.unwrap();
    assert_eq!(ask(server.addr).await.status(), v1::AnswerStatus::Answered);
    let mut never = lumbung_search::AnswerDecision::builtin();
    never.bias = -50.0;
    never.fitted_on = "a test that never answers".into();
    let mut admin = AdminServiceClient::new(harness::connect(server.addr).await);
    let installed = admin
        .set_answer_decision(v1::SetAnswerDecisionRequest {
            parameters: never.to_json(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(installed.fitted_on, "a test that never answers");
    let handed_off = ask(server.addr).await;
    assert_eq!(handed_off.status(), v1::AnswerStatus::NoAnswer);
    assert_eq!(
        handed_off.hand_off_reason(),
        v1::HandOffReason::NotSupported
    );
    server.stop().await;

    let server = harness::TestServer::start(config).await;
    assert_eq!(
        ask(server.addr).await.status(),
        v1::AnswerStatus::NoAnswer,
        "the calibrated decision is loaded at start"
    );
    server.stop().await;
}
