use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Service, free_port, repo_root, wait_for_status};

const KB: &str = "it-helpdesk";
/// A near miss of the sample helpdesk articles (eval/samples s087): they give the response
/// times of P1 to P3 tickets, not P4.
const QUESTION: &str = "What is the response time for a P4 ticket?";

/// `lumbung <subcommand> --json` against the service on `port`, its JSON output.
fn client(port: u16, args: &[&str]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_lumbung"))
        .args(args)
        .arg("--json")
        .arg("--addr")
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "lumbung {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn ask(port: u16, question: &str) -> Value {
    client(port, &["ask", "--kb", KB, question])
}

fn gaps(port: u16) -> Vec<Value> {
    client(port, &["gaps", "--kb", KB])["gaps"]
        .as_array()
        .unwrap()
        .clone()
}

/// The gap log is written after the answer is sent: wait for it to show.
fn wait_for_gaps(port: u16, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = gaps(port);
        if done(&listed) {
            return listed;
        }
        assert!(Instant::now() < deadline, "gaps never became {listed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn start_and_sync(dir: &Path) -> (Service, u16) {
    let port = free_port();
    let service = Service::start(dir, port);
    let documents = crate::harness::documents_in(&dir.join("ingest").join(KB));
    wait_for_status(port, KB, "the sample articles", |s| {
        s.documents_indexed as usize == documents && s.documents_queued == 0
    })
    .await;
    (service, port)
}

/// The whole hand-off loop through the CLI and a real service: a near-miss question is handed
/// off with its reason and the knowledge base's contact, shows in `lumbung gaps` (repeats
/// counted, across a restart), and once its owner writes the missing article, the same
/// question is answered from it and leaves the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_question_reaches_its_owner_and_is_answered_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let kb_dir = dir.path().join("ingest").join(KB);
    crate::harness::copy_dir(&repo_root().join("ingest").join(KB), &kb_dir);
    let (service, port) = start_and_sync(dir.path()).await;

    let answer = ask(port, QUESTION);
    assert_eq!(answer["status"], "no_answer", "{answer:#}");
    assert_eq!(answer["hand_off_reason"], "not_supported", "{answer:#}");
    assert_eq!(answer["escalation"]["knowledge_base"], KB);
    let contact = answer["escalation"]["contact"].as_str().unwrap();
    assert!(contact.contains("4357"), "the kb.toml contact: {contact}");
    assert!(answer["confidence"].as_f64().unwrap() < 0.5, "{answer:#}");
    ask(port, "what is the response time for a p4 ticket");

    let listed = wait_for_gaps(port, |g| g.first().is_some_and(|g| g["count"] == 2));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["question"], QUESTION, "the first wording is kept");

    service.kill();
    let (_service, port) = start_and_sync(dir.path()).await;
    let listed = gaps(port);
    assert_eq!(listed.len(), 1, "kept across the restart: {listed:?}");
    assert_eq!(listed[0]["count"], 2);

    std::fs::write(
        kb_dir.join("ticket-priorities.md"),
        "# Ticket priorities\n\n\
         ## P4 tickets\n\n\
         A P4 ticket is a request for something new or a cosmetic problem. The response time \
         for a P4 ticket is 5 working days.\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let answer = loop {
        let answer = ask(port, QUESTION);
        if answer["status"] == "answered" {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "still handed off after the article was written: {answer:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let first = &answer["sentences"][0];
    assert!(
        first["text"].as_str().unwrap().contains("5 working days"),
        "{answer:#}"
    );
    assert_eq!(first["citation"]["document_path"], "ticket-priorities.md");
    wait_for_gaps(port, |g| g.is_empty());
}

/// `lumbung calibrate` on the project's labelled questions, asked of a real service: it prints
/// the decision before and after on the held-back questions and installs the new parameters,
/// which the service keeps in its data directory and uses without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calibrate_refits_the_decision_of_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    for kb in ["it-helpdesk", "safety-zh", "production-data"] {
        crate::harness::copy_dir(
            &repo_root().join("ingest").join(kb),
            &dir.path().join("ingest").join(kb),
        );
    }
    let port = free_port();
    let _service = Service::start(dir.path(), port);
    for kb in ["it-helpdesk", "safety-zh", "production-data"] {
        let documents = crate::harness::documents_in(&dir.path().join("ingest").join(kb));
        wait_for_status(port, kb, "the sample articles", |s| {
            s.documents_indexed as usize == documents && s.documents_queued == 0
        })
        .await;
    }

    let output = Command::new(env!("CARGO_BIN_EXE_lumbung"))
        .arg("calibrate")
        .arg(repo_root().join("eval/samples/queries.jsonl"))
        .args(["--l2", "10", "--addr"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "held-back questions",
        "all before",
        "all after",
        "min_confidence",
        "installed on the service",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    let installed = std::fs::read_to_string(dir.path().join("data/answer-decision.json")).unwrap();
    let decision = lumbung_search::AnswerDecision::parse(&installed).unwrap();
    assert!(
        decision.fitted_on.contains("queries.jsonl"),
        "{}",
        decision.fitted_on
    );
    assert_ne!(decision, lumbung_search::AnswerDecision::builtin());

    // The next question is decided by the installed parameters, without a restart.
    let mut admin = lumbung_proto::v1::admin_service_client::AdminServiceClient::connect(format!(
        "http://127.0.0.1:{port}"
    ))
    .await
    .unwrap();
    let explained = admin
        .explain_answer(lumbung_proto::v1::ExplainAnswerRequest {
            question: QUESTION.to_string(),
            knowledge_bases: vec![KB.to_string()],
        })
        .await
        .unwrap()
        .into_inner();
    let expected = decision.confidence(&lumbung_search::DecisionFeatures {
        values: explained.features,
    });
    let answer = ask(port, QUESTION);
    let confidence = answer["confidence"].as_f64().unwrap() as f32;
    assert!(
        (confidence - expected).abs() < 1e-5,
        "Ask's confidence {confidence} is not the installed decision's {expected}"
    );
}

/// `lumbung new-token` makes a token the service accepts once its entry is in the token file;
/// the CLI sends it with `--token`, and without it the call is refused as unauthenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_carry_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let kb_dir = dir.path().join("ingest").join(KB);
    std::fs::create_dir_all(&kb_dir).unwrap();
    std::fs::write(
        kb_dir.join("vpn.md"),
        "# VPN\n\nThe VPN portal is vpn.example-manufacturing.com.\n",
    )
    .unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_lumbung"))
        .args(["new-token", "--name", "helpdesk-bot", "--kb", "it-*"])
        .output()
        .unwrap();
    assert!(made.status.success());
    let printed = String::from_utf8(made.stdout).unwrap();
    let token = printed
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .unwrap()
        .to_string();
    let entry = &printed[printed.find("[[token]]").unwrap()..];
    assert!(!entry.contains(&token), "only the hash goes to the file");
    let tokens_file = dir.path().join("tokens.toml");
    std::fs::write(&tokens_file, entry).unwrap();

    let port = free_port();
    let _service = Service::start_with(
        dir.path(),
        port,
        &[("LUMBUNG__SERVER__TOKENS_FILE", &tokens_file)],
    );
    let search = |token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lumbung"));
        command
            .args(["search", "VPN portal", "--json", "--addr"])
            .arg(format!("http://127.0.0.1:{port}"))
            .env_remove("LUMBUNG_TOKEN");
        if let Some(token) = token {
            command.env("LUMBUNG_TOKEN", token);
        }
        command.output().unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let output = search(Some(&token));
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() && stdout.contains("vpn.example-manufacturing.com") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refused = search(None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
