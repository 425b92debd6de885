use std::time::{Duration, Instant};

use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::harness;

/// A word that only knowledge base `beta` holds: any passage, sentence or name carrying it
/// leaks `beta`.
const SECRET: &str = "Zirconium";

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

struct Clients {
    knowledge: KnowledgeServiceClient<Channel>,
    admin: AdminServiceClient<Channel>,
}

impl Clients {
    async fn search(
        &mut self,
        token: &str,
        query: &str,
        kbs: &[&str],
    ) -> Result<Vec<v1::Passage>, tonic::Status> {
        let request = v1::SearchRequest {
            query: query.into(),
            knowledge_bases: kbs.iter().map(|s| s.to_string()).collect(),
            top_k: 10,
            ..Default::default()
        };
        Ok(self
            .knowledge
            .search(with_token(request, Some(token)))
            .await?
            .into_inner()
            .passages)
    }

    async fn ask(
        &mut self,
        token: &str,
        question: &str,
        kbs: &[&str],
    ) -> Result<v1::AskResponse, tonic::Status> {
        let request = v1::AskRequest {
            question: question.into(),
            knowledge_bases: kbs.iter().map(|s| s.to_string()).collect(),
            max_sentences: 3,
        };
        Ok(self
            .knowledge
            .ask(with_token(request, Some(token)))
            .await?
            .into_inner())
    }
}

fn write_kbs(root: &std::path::Path) {
    let alpha = root.join("alpha");
    std::fs::create_dir_all(&alpha).unwrap();
    std::fs::write(
        alpha.join("forklifts.md"),
        "# Forklifts\n\nThe forklift speed limit inside the hall is 6 km/h.\n",
    )
    .unwrap();
    let beta = root.join("beta");
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(
        beta.join("alloys.md"),
        format!("# Alloys\n\nThe {SECRET} alloy for the valve seats is ordered from plant 7.\n"),
    )
    .unwrap();
    std::fs::write(
        beta.join("kb.toml"),
        "escalation = \"Metallurgy lab\"\nreaders = [\"beta-bot\"]\n",
    )
    .unwrap();
}

/// Reader tokens see only their knowledge bases through every RPC; `kb.toml` `readers` narrows
/// a token, never widens it; admin RPCs need the admin role; missing, unknown and revoked
/// tokens are UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sees_only_its_knowledge_bases() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    write_kbs(&config.ingest_root);
    let tokens_file = dir.path().join("tokens.toml");
    let (alpha, alpha_entry) =
        lumbung_server::new_token("alpha-bot", "reader", &["alpha".into()]).unwrap();
    // Every knowledge base by pattern, but beta's readers name only beta-bot.
    let (wide, wide_entry) =
        lumbung_server::new_token("wide-bot", "reader", &["*".into()]).unwrap();
    let (admin, admin_entry) = lumbung_server::new_token("ops", "admin", &["*".into()]).unwrap();
    std::fs::write(
        &tokens_file,
        format!("{alpha_entry}\n{wide_entry}\n{admin_entry}"),
    )
    .unwrap();
    config.server.tokens_file = Some(tokens_file.clone());
    let server = harness::TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let channel = harness::connect(server.addr).await;
    let mut clients = Clients {
        knowledge: KnowledgeServiceClient::new(channel.clone()),
        admin: AdminServiceClient::new(channel),
    };

    // The admin sees both; the readers see only alpha, whatever they ask for.
    let everything = clients.search(&admin, SECRET, &[]).await.unwrap();
    assert!(
        everything.iter().any(|p| p.text.contains(SECRET)),
        "the admin reads beta"
    );
    for reader in [&alpha, &wide] {
        let passages = clients.search(reader, SECRET, &[]).await.unwrap();
        assert!(
            passages.iter().all(|p| !p.text.contains(SECRET)
                && p.citation.as_ref().unwrap().knowledge_base == "alpha"),
            "{passages:?}"
        );
        let hidden = clients.search(reader, SECRET, &["beta"]).await.unwrap_err();
        let missing = clients
            .search(reader, SECRET, &["gamma"])
            .await
            .unwrap_err();
        assert_eq!(hidden.code(), Code::NotFound);
        assert_eq!(
            hidden.message().replace("beta", "gamma"),
            missing.message(),
            "a hidden knowledge base reads like a missing one"
        );

        let question = format!("Where is the {SECRET} alloy ordered from?");
        for kbs in [&[][..], &["alpha"][..]] {
            let answer = clients.ask(reader, &question, kbs).await.unwrap();
            let shown = format!("{answer:?}");
            assert!(
                !shown.contains(SECRET) && !shown.contains("beta") && !shown.contains("Metallurgy"),
                "{shown}"
            );
            assert_ne!(
                answer.hand_off_reason(),
                v1::HandOffReason::OutsideKnowledgeBases
            );
        }
        assert_eq!(
            clients
                .ask(reader, &question, &["beta"])
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );

        let listed = clients
            .knowledge
            .list_knowledge_bases(with_token(
                v1::ListKnowledgeBasesRequest::default(),
                Some(reader),
            ))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<_> = listed
            .knowledge_bases
            .iter()
            .map(|kb| kb.name.as_str())
            .collect();
        assert_eq!(names, ["alpha"]);

        let status = clients
            .admin
            .get_ingest_status(with_token(
                v1::GetIngestStatusRequest::default(),
                Some(reader),
            ))
            .await
            .unwrap()
            .into_inner();
        let names: Vec<_> = status
            .knowledge_bases
            .iter()
            .map(|kb| kb.name.as_str())
            .collect();
        assert_eq!(names, ["alpha"]);
        let request = v1::GetIngestStatusRequest {
            knowledge_base: "beta".into(),
            include_documents: true,
        };
        let err = clients
            .admin
            .get_ingest_status(with_token(request, Some(reader)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let request = v1::ListGapsRequest {
            knowledge_base: "beta".into(),
            since: None,
        };
        let err = clients
            .admin
            .list_gaps(with_token(request, Some(reader)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let request = v1::ExplainAnswerRequest {
            question: question.clone(),
            knowledge_bases: Vec::new(),
        };
        let explained = clients
            .admin
            .explain_answer(with_token(request, Some(reader)))
            .await
            .unwrap()
            .into_inner();
        assert!(!format!("{explained:?}").contains(SECRET));

        // Readers administer nothing.
        let request = v1::ReindexRequest {
            knowledge_base: "alpha".into(),
        };
        let err = clients
            .admin
            .reindex(with_token(request, Some(reader)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        let request = v1::SetAnswerDecisionRequest {
            parameters: lumbung_search::AnswerDecision::builtin().to_json(),
        };
        let err = clients
            .admin
            .set_answer_decision(with_token(request, Some(reader)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let request = v1::ReindexRequest {
        knowledge_base: "alpha".into(),
    };
    clients
        .admin
        .reindex(with_token(request, Some(&admin)))
        .await
        .unwrap();

    // No token, or an unknown one.
    let request = v1::SearchRequest {
        query: "forklift".into(),
        top_k: 3,
        ..Default::default()
    };
    for token in [None, Some("lmb_not-a-token")] {
        let err = clients
            .knowledge
            .search(with_token(request.clone(), token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    }

    // The owner of beta opens it to wide-bot: after the next sync, wide-bot reads it.
    std::fs::write(
        dir.path().join("ingest/beta/kb.toml"),
        "escalation = \"Metallurgy lab\"\nreaders = [\"beta-bot\", \"wide-bot\"]\n",
    )
    .unwrap();
    server.app.sync_all().await.unwrap();
    let passages = clients.search(&wide, SECRET, &["beta"]).await.unwrap();
    assert!(passages.iter().any(|p| p.text.contains(SECRET)));
    assert_eq!(
        clients
            .search(&alpha, SECRET, &["beta"])
            .await
            .unwrap_err()
            .code(),
        Code::NotFound,
        "readers narrow alpha-bot's token, which never covered beta"
    );

    // Revoked: the file without alpha-bot is picked up without a restart.
    std::fs::write(&tokens_file, format!("{wide_entry}\n{admin_entry}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match clients.search(&alpha, "forklift", &[]).await {
            Err(err) if err.code() == Code::Unauthenticated => break,
            outcome => assert!(
                Instant::now() < deadline,
                "still served after revocation: {outcome:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(clients.search(&wide, "forklift", &[]).await.is_ok());
    server.stop().await;
}

/// A token's request rate and requests in flight are bounded by its entry (or the defaults):
/// past them it is refused at once with RESOURCE_EXHAUSTED and a pushback that says when to
/// come back, while other tokens are served as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_limits_hold_it_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    write_kbs(&config.ingest_root);
    // Room for every request of this test in the service's own queue: only tokens refuse.
    config.server.max_waiting_requests = 64;
    config.search.max_waiting_tasks = 64;
    config.server.token_max_concurrent = 1;
    let tokens_file = dir.path().join("tokens.toml");
    let (slow, slow_entry) =
        lumbung_server::new_token("slow-bot", "reader", &["*".into()]).unwrap();
    let (single, single_entry) =
        lumbung_server::new_token("single-bot", "reader", &["*".into()]).unwrap();
    let (free, free_entry) =
        lumbung_server::new_token("free-bot", "reader", &["*".into()]).unwrap();
    std::fs::write(
        &tokens_file,
        format!(
            "{}requests_per_second = 2\nmax_concurrent = 0\n\n{single_entry}\n{}max_concurrent = 0\n",
            slow_entry, free_entry
        ),
    )
    .unwrap();
    config.server.tokens_file = Some(tokens_file);
    let server = harness::TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let channel = harness::connect(server.addr).await;
    let knowledge = KnowledgeServiceClient::new(channel);
    let list = |token: String| {
        let mut knowledge = knowledge.clone();
        async move {
            knowledge
                .list_knowledge_bases(with_token(
                    v1::ListKnowledgeBasesRequest::default(),
                    Some(&token),
                ))
                .await
        }
    };

    // Two per second, in bursts of two: the third at once is refused, with the wait.
    list(slow.clone()).await.unwrap();
    list(slow.clone()).await.unwrap();
    let refused = list(slow.clone()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("requests_per_second = 2"),
        "{refused:?}"
    );
    let pushback: u64 = refused
        .metadata()
        .get("grpc-retry-pushback-ms")
        .expect("a retry pushback")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=500).contains(&pushback), "{pushback} ms");
    list(free.clone()).await.expect("another token is not held");
    tokio::time::sleep(Duration::from_millis(pushback + 50)).await;
    list(slow).await.expect("served again after the pushback");

    // One in flight: of concurrent searches some are refused, none fails otherwise, and the
    // unlimited token's searches all pass meanwhile.
    let search = |token: String| {
        let mut knowledge = knowledge.clone();
        async move {
            let request = v1::SearchRequest {
                query: "alloy order".into(),
                top_k: 5,
                ..Default::default()
            };
            knowledge.search(with_token(request, Some(&token))).await
        }
    };
    let singles: Vec<_> = (0..8)
        .map(|_| tokio::spawn(search(single.clone())))
        .collect();
    let frees: Vec<_> = (0..4).map(|_| tokio::spawn(search(free.clone()))).collect();
    let (mut served, mut refused) = (0, 0);
    for outcome in singles {
        match outcome.await.unwrap() {
            Ok(_) => served += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("max_concurrent = 1"),
                    "{status:?}"
                );
                refused += 1;
            }
        }
    }
    assert!(
        served >= 1 && refused >= 1,
        "served {served}, refused {refused}"
    );
    for outcome in frees {
        outcome
            .await
            .unwrap()
            .expect("the unlimited token is served");
    }
    server.stop().await;
}
