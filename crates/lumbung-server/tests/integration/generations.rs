//! Rebuilds as jobs and knowledge-base lifecycle through the admin API of a real server: a
//! reindex builds a new generation beside the active one while concurrent clients search and
//! ask, takes in a file edited meanwhile, swaps in one step and deletes the old generation; a
//! cancel discards; other knowledge bases sync while one rebuilds; knowledge bases are created
//! and deleted.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lumbung_core::{ChunkId, Config, KbName};
use lumbung_ingest::DocumentRecord;
use lumbung_proto::v1;
use lumbung_proto::v1::admin_service_client::AdminServiceClient;
use lumbung_proto::v1::knowledge_service_client::KnowledgeServiceClient;
use tonic::Code;

use crate::harness::{self, TestServer};

const KB: &str = "it-helpdesk";
const PATIENCE: Duration = Duration::from_secs(300);

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    harness::eventually(what, PATIENCE, check).await
}

fn config(dir: &Path) -> Config {
    let mut config = harness::test_config(dir);
    config.ingest.retire_after_ms = 500;
    harness::copy_dir(
        &harness::repo_root().join("ingest").join(KB),
        &config.ingest_root.join(KB),
    );
    config
}

async fn admin(addr: SocketAddr) -> AdminServiceClient<tonic::transport::Channel> {
    AdminServiceClient::new(harness::connect(addr).await)
}

async fn reindex(addr: SocketAddr, kb: &str) -> Result<v1::Job, tonic::Status> {
    let response = admin(addr)
        .await
        .reindex(v1::ReindexRequest {
            knowledge_base: kb.to_string(),
        })
        .await?;
    Ok(response.into_inner().job.expect("a started job"))
}

async fn cancel_reindex(addr: SocketAddr, kb: &str) -> Result<String, tonic::Status> {
    let response = admin(addr)
        .await
        .cancel_reindex(v1::CancelReindexRequest {
            knowledge_base: kb.to_string(),
        })
        .await?;
    Ok(response.into_inner().job_id)
}

async fn status(addr: SocketAddr, kb: &str) -> Result<v1::KnowledgeBaseStatus, tonic::Status> {
    let response = admin(addr)
        .await
        .get_ingest_status(v1::GetIngestStatusRequest {
            knowledge_base: kb.to_string(),
            include_documents: false,
        })
        .await?;
    Ok(response.into_inner().knowledge_bases.remove(0))
}

async fn search(
    addr: SocketAddr,
    kb: &str,
    query: &str,
) -> Result<v1::SearchResponse, tonic::Status> {
    let mut client = KnowledgeServiceClient::new(harness::connect(addr).await);
    Ok(client
        .search(v1::SearchRequest {
            query: query.to_string(),
            knowledge_bases: vec![kb.to_string()],
            top_k: 5,
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// The chunk ids of every document of the active generation of `kb`.
fn active_chunk_ids(server: &TestServer, kb: &str) -> HashSet<String> {
    let ingestor = server.app.ingestor().unwrap();
    let generation = ingestor
        .active_generation(&KbName::new(kb).unwrap())
        .unwrap();
    ingestor
        .catalog()
        .list(&generation)
        .unwrap()
        .iter()
        .flat_map(DocumentRecord::chunk_ids)
        .map(ChunkId::to_hex)
        .collect()
}

/// What the concurrent clients saw.
#[derive(Default)]
struct Seen {
    requests: usize,
    failed: Vec<String>,
    empty: Vec<String>,
    /// The chunk ids of each response, to check that none mixes two generations.
    responses: Vec<Vec<String>>,
}

/// Searches and asks `kb` in a loop until `stop`, recording what comes back.
async fn client_loop(addr: SocketAddr, stop: Arc<AtomicBool>) -> Seen {
    let channel = harness::connect(addr).await;
    let mut client = KnowledgeServiceClient::new(channel);
    let mut seen = Seen::default();
    let questions = [
        "VPN error 809 certificate expired",
        "how do I reset my password",
        "printer setup on the third floor",
    ];
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let question = questions[n % questions.len()];
        n += 1;
        seen.requests += 1;
        let searched = client
            .search(v1::SearchRequest {
                query: question.to_string(),
                knowledge_bases: vec![KB.to_string()],
                top_k: 5,
                ..Default::default()
            })
            .await;
        match searched {
            Err(status) => seen.failed.push(format!("Search {question}: {status:?}")),
            Ok(response) => {
                let passages = response.into_inner().passages;
                if passages.is_empty() {
                    seen.empty.push(format!("Search {question}"));
                }
                seen.responses
                    .push(passages.into_iter().map(|p| p.chunk_id).collect());
            }
        }
        seen.requests += 1;
        let asked = client
            .ask(v1::AskRequest {
                question: "Where do I reset my password myself?".to_string(),
                knowledge_bases: vec![KB.to_string()],
                max_sentences: 3,
            })
            .await;
        match asked {
            Err(status) => seen.failed.push(format!("Ask: {status:?}")),
            Ok(response) => {
                let response = response.into_inner();
                if response.sentences.is_empty() {
                    seen.empty.push(format!("Ask: {response:?}"));
                }
            }
        }
    }
    seen
}

/// Stops the clients and checks what they saw: no request failed or came back empty, and
/// each response came from one generation, the old (`first_ids`) or the new (`second_ids`),
/// the new one among them.
async fn stop_clients_and_check(
    clients: Vec<tokio::task::JoinHandle<Seen>>,
    stop: &AtomicBool,
    first_ids: &HashSet<String>,
    second_ids: &HashSet<String>,
) {
    stop.store(true, Ordering::SeqCst);
    let mut seen = Seen::default();
    for client in clients {
        let mine = client.await.unwrap();
        seen.requests += mine.requests;
        seen.failed.extend(mine.failed);
        seen.empty.extend(mine.empty);
        seen.responses.extend(mine.responses);
    }
    assert!(seen.requests > 10, "too few requests: {}", seen.requests);
    assert!(seen.failed.is_empty(), "{:#?}", seen.failed);
    assert!(seen.empty.is_empty(), "{:#?}", seen.empty);
    assert!(first_ids.is_disjoint(second_ids));
    for response in &seen.responses {
        let ids: HashSet<String> = response.iter().cloned().collect();
        assert!(
            ids.is_subset(first_ids) || ids.is_subset(second_ids),
            "a response mixed generations or held a chunk of neither: {response:?}"
        );
    }
    assert!(
        seen.responses
            .iter()
            .any(|r| !r.is_empty() && second_ids.contains(&r[0])),
        "no response came from the new generation"
    );
}

/// Blue/green reindex under load: two clients search and ask throughout, a file is edited
/// mid-build, the new generation swaps in, the old one is deleted, and no request fails,
/// comes back empty, or mixes generations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_builds_a_generation_beside_the_live_one_under_concurrent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let kb_dir = config.ingest_root.join(KB);
    let server = TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let _watcher = server.app.watch().unwrap();
    let addr = server.addr;
    let first_ids = active_chunk_ids(&server, KB);
    let before = status(addr, KB).await.unwrap();
    assert_eq!((before.generation, before.building_generation), (1, 0));

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client_loop(addr, Arc::clone(&stop))))
        .collect();

    let started = reindex(addr, KB).await.unwrap();
    assert_eq!(started.id, format!("{KB}@2"));
    assert_eq!(started.state(), v1::JobState::Running);
    // One rebuild at a time.
    let refused = reindex(addr, KB).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains(&started.id), "{refused:?}");

    // Edited while the new generation is being built.
    std::fs::write(
        kb_dir.join("vpn-access.md"),
        "# VPN access\n\nThe VPN gateway moved to vpn2.example.com: reconnect with the \
         GlobalProtect profile named Kestrel-7 after the upgrade.\n",
    )
    .unwrap();

    let mut phases = HashSet::new();
    let mut building = 0;
    let ended = loop {
        let kb = status(addr, KB).await.unwrap();
        let job = kb.job.clone().unwrap();
        phases.insert(job.phase());
        if job.state() == v1::JobState::Running {
            building = building.max(kb.building_generation);
        } else {
            break kb;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let job = ended.job.clone().unwrap();
    assert_eq!(job.state(), v1::JobState::Succeeded, "{job:?}");
    assert_eq!(building, 2, "the status showed the generation being built");
    assert!(
        job.documents_done > 0 && job.documents_done >= job.documents_total - 1,
        "{job:?}"
    );
    assert!(job.finished.is_some());
    assert_eq!(ended.generation, 2);
    assert_eq!(ended.building_generation, 0);

    // The edit is in the new generation, in its new version only.
    eventually(
        "the file edited during the build, after the swap",
        || async {
            let response = search(addr, KB, "Kestrel-7 GlobalProtect profile")
                .await
                .unwrap();
            response
                .passages
                .first()
                .is_some_and(|p| p.text.contains("Kestrel-7"))
        },
    )
    .await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_clients_and_check(clients, &stop, &first_ids, &active_chunk_ids(&server, KB)).await;

    // The old generation is deleted after ingest.retire_after_ms; the new one checks clean.
    let ingestor = Arc::clone(server.app.ingestor().unwrap());
    let kb = KbName::new(KB).unwrap();
    let old = lumbung_core::KbGeneration::first(kb.clone());
    eventually("the old generation deleted", || {
        let ingestor = Arc::clone(&ingestor);
        let old = old.clone();
        async move {
            ingestor.lexical().count_chunks(&old, None).unwrap() == 0
                && ingestor.catalog().list(&old).unwrap().is_empty()
                && ingestor
                    .catalog()
                    .generations(&old.kb().clone())
                    .unwrap()
                    .retired
                    .is_empty()
        }
    })
    .await;
    assert!(ingestor.verify(&kb).unwrap().is_empty());

    // A cancel discards the generation being built; the active one is untouched.
    let started = reindex(addr, KB).await.unwrap();
    assert_eq!(started.generation, 3);
    let cancelled = cancel_reindex(addr, KB).await;
    match cancelled {
        Ok(response) => {
            assert_eq!(response, started.id);
            eventually("the cancelled job ended", || async {
                status(addr, KB).await.unwrap().job.unwrap().state() != v1::JobState::Running
            })
            .await;
            let kb_status = status(addr, KB).await.unwrap();
            assert_eq!(kb_status.job.unwrap().state(), v1::JobState::Cancelled);
            assert_eq!(
                (kb_status.generation, kb_status.building_generation),
                (2, 0)
            );
            let third = lumbung_core::KbGeneration::new(
                kb.clone(),
                lumbung_core::Generation::new(3).unwrap(),
            );
            assert_eq!(ingestor.lexical().count_chunks(&third, None).unwrap(), 0);
            assert!(ingestor.catalog().list(&third).unwrap().is_empty());
        }
        // The small sample can be rebuilt before the cancel arrives: then it is too late.
        Err(status) => {
            assert_eq!(status.code(), Code::NotFound, "{status:?}");
            ingestor.wait_for_job(&kb);
        }
    }
    assert!(ingestor.verify(&kb).unwrap().is_empty());
    let cancel_nothing = cancel_reindex(addr, KB).await.unwrap_err();
    assert_eq!(cancel_nothing.code(), Code::NotFound);
    let invalid = reindex(addr, "").await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(invalid.message().contains("knowledge_base"));
    drop(_watcher);
    server.stop().await;
}

/// A second embedding model, of another dimension: the same model's int8 file, its vectors cut
/// to 256 entries.
const OTHER_MODEL: &str = "e5-small-int8-256";

fn with_other_model(config: &mut Config) {
    let other = lumbung_core::EmbeddingConfig {
        onnx_file: "model-int8.onnx".to_string(),
        dimension: 256,
        truncate_dimension: true,
        ..config.embedding.clone()
    };
    config
        .embedding_models
        .insert(OTHER_MODEL.to_string(), other);
}

/// A knowledge base moved to another embedding model (and vector dimension) by a rebuild,
/// while two clients search and ask it: the new generation is embedded with the new model
/// into a store of its dimension, searches embed the query with whichever model the serving
/// generation has, and none fails or comes back empty. A search over it and a knowledge base
/// left on the old model finds the passages of both. The move survives a restart, and a
/// service whose configuration lost a model that still serves refuses to start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_change_builds_beside_the_live_model_under_concurrent_clients() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    with_other_model(&mut config);
    harness::write_document(
        &config,
        "kiln",
        "kiln.md",
        "# Kiln K-3\n\nThe burner of kiln K-3 is relit only after a purge of five minutes. \
         The kiln desk answers at extension 210.\n",
    );
    let kb_dir = config.ingest_root.join(KB);
    let server = TestServer::start(config.clone()).await;
    server.app.sync_all().await.unwrap();
    let _watcher = server.app.watch().unwrap();
    let addr = server.addr;
    let first_ids = active_chunk_ids(&server, KB);
    let before = status(addr, KB).await.unwrap();
    assert_eq!(before.embedding_model, "multilingual-e5-small");
    assert_eq!(before.next_embedding_model, "multilingual-e5-small");

    // A model the service does not load: refused, naming it, before anything is built.
    let settings = kb_dir.join("kb.toml");
    let original = std::fs::read_to_string(&settings).unwrap();
    std::fs::write(
        &settings,
        format!("{original}embedding_model = \"nowhere\"\n"),
    )
    .unwrap();
    let refused = reindex(addr, KB).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("nowhere"), "{refused:?}");
    let shown = status(addr, KB).await.unwrap();
    assert!(shown.settings_error.contains("nowhere"), "{shown:?}");
    assert_eq!(shown.building_generation, 0);
    let created = admin(addr)
        .await
        .create_knowledge_base(v1::CreateKnowledgeBaseRequest {
            name: "elsewhere".to_string(),
            embedding_model: "nowhere".to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(created.code(), Code::InvalidArgument, "{created:?}");
    assert!(created.message().contains("embedding_model"), "{created:?}");

    let mut toml = original;
    toml.push_str(&format!("embedding_model = \"{OTHER_MODEL}\"\n"));
    std::fs::write(&settings, toml).unwrap();
    let wanted = status(addr, KB).await.unwrap();
    assert_eq!(
        (
            wanted.embedding_model.as_str(),
            wanted.next_embedding_model.as_str()
        ),
        ("multilingual-e5-small", OTHER_MODEL),
        "{wanted:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client_loop(addr, Arc::clone(&stop))))
        .collect();
    let started = std::time::Instant::now();
    let job = reindex(addr, KB).await.unwrap();
    let mut building_model = String::new();
    let ended = loop {
        let kb = status(addr, KB).await.unwrap();
        if kb.job.as_ref().unwrap().state() != v1::JobState::Running {
            break kb;
        }
        if !kb.building_embedding_model.is_empty() {
            building_model = kb.building_embedding_model.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "{KB} moved to {OTHER_MODEL} in {:.1} s under two clients",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        ended.job.unwrap().state(),
        v1::JobState::Succeeded,
        "{job:?}"
    );
    assert_eq!(building_model, OTHER_MODEL);
    assert_eq!(ended.generation, 2);
    assert_eq!(ended.embedding_model, OTHER_MODEL);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second_ids = active_chunk_ids(&server, KB);
    stop_clients_and_check(clients, &stop, &first_ids, &second_ids).await;

    // The new model's vectors have its dimension, in a store of its own; the old model's
    // store loses the old generation once it retires.
    let kb = KbName::new(KB).unwrap();
    let ingestor = Arc::clone(server.app.ingestor().unwrap());
    let old = lumbung_core::KbGeneration::first(kb.clone());
    eventually("the old generation deleted", || {
        let ingestor = Arc::clone(&ingestor);
        let old = old.clone();
        async move {
            ingestor
                .catalog()
                .generations(old.kb())
                .unwrap()
                .retired
                .is_empty()
        }
    })
    .await;
    assert!(ingestor.verify(&kb).unwrap().is_empty());
    let answer = search(addr, KB, "how do I reset my password")
        .await
        .unwrap();
    assert!(
        answer.passages[0].text.to_lowercase().contains("password"),
        "{:?}",
        answer.passages[0]
    );
    // One search over knowledge bases of two models: the question embedded by each.
    assert_eq!(
        status(addr, "kiln").await.unwrap().embedding_model,
        "multilingual-e5-small"
    );
    let mut client = KnowledgeServiceClient::new(harness::connect(addr).await);
    for (question, kb, words) in [
        (
            "How long is the burner of kiln K-3 purged before it is relit?",
            "kiln",
            "purge",
        ),
        ("how do I reset my password", KB, "password"),
    ] {
        let both = client
            .search(v1::SearchRequest {
                query: question.to_string(),
                knowledge_bases: vec![KB.to_string(), "kiln".to_string()],
                top_k: 5,
                retriever: v1::Retriever::Dense.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let first = &both.passages[0];
        assert_eq!(
            first.citation.as_ref().unwrap().knowledge_base,
            kb,
            "{first:?}"
        );
        assert!(first.text.to_lowercase().contains(words), "{first:?}");
        let asked = client
            .ask(v1::AskRequest {
                question: question.to_string(),
                knowledge_bases: vec![KB.to_string(), "kiln".to_string()],
                max_sentences: 3,
            })
            .await
            .unwrap()
            .into_inner();
        // Answered from the right knowledge base, or handed off to it.
        let from = match asked.sentences.first() {
            Some(sentence) => sentence.citation.as_ref().unwrap().knowledge_base.clone(),
            None => asked.escalation.as_ref().unwrap().knowledge_base.clone(),
        };
        assert_eq!(from, kb, "{asked:?}");
    }
    drop(_watcher);
    drop(ingestor);
    server.stop().await;

    // After a restart the knowledge base still serves from the new model's store.
    let server = TestServer::start(config.clone()).await;
    let restarted = status(server.addr, KB).await.unwrap();
    assert_eq!(
        (restarted.generation, restarted.embedding_model.as_str()),
        (2, OTHER_MODEL)
    );
    let again = search(server.addr, KB, "how do I reset my password")
        .await
        .unwrap();
    assert_eq!(again.passages[0].chunk_id, answer.passages[0].chunk_id);
    server.stop().await;

    // A generation whose model is no longer configured could be neither searched nor
    // deleted: the service refuses to start and says which.
    config.embedding_models.clear();
    let refused = tokio::task::spawn_blocking(move || lumbung_server::App::open(config))
        .await
        .unwrap()
        .err()
        .expect("a start without the serving model is refused");
    let refused = refused.to_string();
    assert!(
        refused.contains(OTHER_MODEL) && refused.contains("it-helpdesk@2"),
        "{refused}"
    );
}

/// A rebuild of one knowledge base neither waits for nor blocks the syncs of the others: a
/// file added to another knowledge base is searchable while the rebuild is still building.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_knowledge_bases_sync_while_one_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    config.ingest.retire_after_ms = 200;
    for i in 0..80 {
        let text = format!(
            "# Work instruction WI-{i:03}\n\nStep one for machine M-{i}: check the torque of \
             bolt group {i} to {} Nm and log it on sheet WI-{i:03}. Step two: report any \
             reading outside tolerance to the shift leader of line {} before the next cycle.\n",
            40 + i,
            i % 7
        );
        harness::write_document(&config, "bulk", &format!("wi-{i:03}.md"), &text);
    }
    harness::write_document(&config, "other", "start.md", "# Start\n\nNothing yet.\n");
    let server = TestServer::start(config.clone()).await;
    server.app.sync_all().await.unwrap();
    let _watcher = server.app.watch().unwrap();
    let addr = server.addr;

    reindex(addr, "bulk").await.unwrap();
    harness::write_document(
        &config,
        "other",
        "boiler.md",
        "# Boiler B-2\n\nBlow down boiler B-2 every shift and log the conductivity.\n",
    );
    eventually("the other knowledge base's new file", || async {
        search(addr, "other", "blow down boiler B-2 conductivity")
            .await
            .is_ok_and(|r| r.passages.iter().any(|p| p.text.contains("B-2")))
    })
    .await;
    let bulk = status(addr, "bulk").await.unwrap();
    let job = bulk.job.unwrap();
    assert_eq!(
        (job.state(), job.phase()),
        (v1::JobState::Running, v1::JobPhase::Building),
        "the rebuild should still be building (it reads 80 files): {job:?}"
    );
    server
        .app
        .ingestor()
        .unwrap()
        .wait_for_job(&KbName::new("bulk").unwrap());
    let bulk = status(addr, "bulk").await.unwrap();
    assert_eq!(bulk.job.unwrap().state(), v1::JobState::Succeeded);
    assert_eq!((bulk.generation, bulk.documents_indexed), (2, 80));
    drop(_watcher);
    server.stop().await;
}

/// Knowledge bases created, described and deleted through the admin API: the folder and its
/// kb.toml, ALREADY_EXISTS, a deleted knowledge base gone from both indexes and no longer
/// indexed from its kept folder, taken back by a create, and its folder removed on request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knowledge_bases_are_created_described_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    std::fs::create_dir_all(&config.ingest_root).unwrap();
    let root = config.ingest_root.clone();
    let server = TestServer::start(config).await;
    let _watcher = server.app.watch().unwrap();
    let addr = server.addr;
    let create = |name: &str| v1::CreateKnowledgeBaseRequest {
        name: name.to_string(),
        title: "Kiln operations".to_string(),
        escalation: "Kiln desk, ext. 210".to_string(),
        language: "en".to_string(),
        ..Default::default()
    };

    let created = admin(addr)
        .await
        .create_knowledge_base(create("kiln"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(Path::new(&created.folder), root.join("kiln"));
    let settings = lumbung_ingest::KbSettings::load(&root.join("kiln")).unwrap();
    assert_eq!(settings.title.as_deref(), Some("Kiln operations"));
    assert_eq!(settings.escalation.as_deref(), Some("Kiln desk, ext. 210"));
    let again = admin(addr)
        .await
        .create_knowledge_base(create("kiln"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let bad = admin(addr)
        .await
        .create_knowledge_base(create("Kiln Ops"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("name"), "{bad:?}");
    let mut bad_language = create("kiln-2");
    bad_language.language = "english please".to_string();
    let bad = admin(addr)
        .await
        .create_knowledge_base(bad_language)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("language"), "{bad:?}");

    std::fs::write(
        root.join("kiln/purge.md"),
        "# Kiln K-4\n\nPurge the kiln K-4 burner for 90 seconds before ignition.\n",
    )
    .unwrap();
    eventually("the new knowledge base's document", || async {
        status(addr, "kiln")
            .await
            .is_ok_and(|s| s.documents_indexed == 1)
    })
    .await;
    let described = status(addr, "kiln").await.unwrap();
    assert_eq!(described.generation, 1);
    assert_eq!(described.embedding_model, "multilingual-e5-small");
    assert!(
        described.source_bytes > 0 && described.chunks > 0,
        "{described:?}"
    );

    // Deleted, folder kept: gone from search and both indexes, and not indexed again.
    admin(addr)
        .await
        .delete_knowledge_base(v1::DeleteKnowledgeBaseRequest {
            name: "kiln".to_string(),
            remove_folder: false,
        })
        .await
        .unwrap();
    assert!(root.join("kiln/purge.md").exists());
    let gone = search(addr, "kiln", "kiln burner purge").await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let ingestor = Arc::clone(server.app.ingestor().unwrap());
    let kiln = KbName::new("kiln").unwrap();
    assert_eq!(
        ingestor
            .lexical()
            .count_chunks(&lumbung_core::KbGeneration::first(kiln.clone()), None)
            .unwrap(),
        0
    );
    std::fs::write(root.join("kiln/more.md"), "# More\n\nAnother kiln note.\n").unwrap();
    server.app.sync_all().await.unwrap();
    assert_eq!(
        status(addr, "kiln").await.unwrap_err().code(),
        Code::NotFound
    );

    // Created again: the kept folder is indexed again, into a fresh generation.
    admin(addr)
        .await
        .create_knowledge_base(create("kiln"))
        .await
        .unwrap();
    eventually("the kept folder indexed again", || async {
        status(addr, "kiln")
            .await
            .is_ok_and(|s| s.documents_indexed == 2)
    })
    .await;
    assert!(status(addr, "kiln").await.unwrap().generation > 1);
    assert!(ingestor.verify(&kiln).unwrap().is_empty());

    // Deleted with its folder.
    admin(addr)
        .await
        .delete_knowledge_base(v1::DeleteKnowledgeBaseRequest {
            name: "kiln".to_string(),
            remove_folder: true,
        })
        .await
        .unwrap();
    assert!(!root.join("kiln").exists());
    assert_eq!(
        status(addr, "kiln").await.unwrap_err().code(),
        Code::NotFound
    );
    assert!(ingestor.catalog().knowledge_bases().unwrap().is_empty());
    let missing = admin(addr)
        .await
        .delete_knowledge_base(v1::DeleteKnowledgeBaseRequest {
            name: "kiln".to_string(),
            remove_folder: false,
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    drop(_watcher);
    server.stop().await;
}
