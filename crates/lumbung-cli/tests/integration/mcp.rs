//! MCP with a real client: the MCP Inspector's CLI mode (npm `@modelcontextprotocol/inspector`,
//! pinned in `tests/mcp-inspector/package-lock.json` and installed by `scripts/test.sh`) lists
//! and calls the tools and reads the resources, over streamable HTTP on the service's HTTP port
//! and over stdio through `lumbung mcp`.

use std::process::Command;

use serde_json::Value;

use crate::harness::{
    ANSWERABLE, HELPDESK as KB, HIDDEN_KB, HIDDEN_WORD, HttpService, UNANSWERABLE, repo_root,
    serve_helpdesk,
};

/// `mcp-inspector --cli`.
fn inspector() -> Command {
    let dir = repo_root().join("crates/lumbung-cli/tests/mcp-inspector");
    let bin = dir.join("node_modules/.bin/mcp-inspector");
    assert!(
        bin.exists(),
        "{} is missing: run `npm ci --prefix {}` (scripts/test.sh does)",
        bin.display(),
        dir.display()
    );
    let mut command = Command::new(bin);
    command.arg("--cli");
    command
}

/// What the inspector printed (JSON) when it succeeded, or what it said on stderr.
fn run(command: &mut Command, args: &[&str]) -> Result<Value, String> {
    let output = command.args(args).output().unwrap();
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).map_err(|err| format!("not JSON ({err}): {stdout}"))
}

/// The inspector against the HTTP port, with `token` when given.
fn over_http(service: &HttpService, token: Option<&str>, args: &[&str]) -> Result<Value, String> {
    let mut command = inspector();
    command
        .arg(format!("http://127.0.0.1:{}/mcp", service.http))
        .args(["--transport", "http"]);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    run(&mut command, args)
}

/// The inspector starting `lumbung mcp` on stdio, with `token` for the service's gRPC port.
fn over_stdio(service: &HttpService, token: &str, args: &[&str]) -> Result<Value, String> {
    let mut command = inspector();
    command
        .args([
            "-e",
            &format!("LUMBUNG_ADDR=http://127.0.0.1:{}", service.grpc),
        ])
        .args(["-e", &format!("LUMBUNG_TOKEN={token}")])
        .args(["-e", "RUST_LOG=warn"])
        .arg(env!("CARGO_BIN_EXE_lumbung"))
        .arg("mcp");
    run(&mut command, args)
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_inspector_lists_and_calls_the_tools_over_http_and_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let (service, token) = serve_helpdesk(dir.path(), 2).await;
    let bot = Some(token.as_str());

    let listed = over_http(&service, bot, &["--method", "tools/list"]).unwrap();
    let mut tools: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    tools.sort();
    assert_eq!(tools, ["ask_knowledge", "search_knowledge"]);

    let question = format!("question={ANSWERABLE}");
    let call_ask = [
        "--method",
        "tools/call",
        "--tool-name",
        "ask_knowledge",
        "--tool-arg",
    ];
    let answered = over_http(&service, bot, &[&call_ask[..], &[&question]].concat()).unwrap();
    assert_eq!(
        answered["structuredContent"]["status"], "ANSWER_STATUS_ANSWERED",
        "{answered}"
    );
    assert!(text(&answered).starts_with("ANSWERED"), "{answered}");
    assert!(
        text(&answered).contains("vpn-access.md"),
        "cited: {answered}"
    );

    // The hand-off carries its reason and the knowledge base's contact.
    let question = format!("question={UNANSWERABLE}");
    let handed_off = over_http(&service, bot, &[&call_ask[..], &[&question]].concat()).unwrap();
    assert!(text(&handed_off).starts_with("NO ANSWER"), "{handed_off}");
    assert!(
        text(&handed_off).contains("4357"),
        "the contact: {handed_off}"
    );
    assert!(
        handed_off["structuredContent"]["escalation"]["contact"]
            .as_str()
            .unwrap()
            .contains("4357")
    );

    // A knowledge base the token may not read is a tool error the model can read.
    let hidden = format!("knowledge_bases=[\"{HIDDEN_KB}\"]");
    let refused = over_http(
        &service,
        bot,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "search_knowledge",
            "--tool-arg",
            "query=alloy",
            "--tool-arg",
            &hidden,
        ],
    )
    .unwrap();
    assert_eq!(refused["isError"], true, "{refused}");
    assert!(text(&refused).starts_with("NOT_FOUND"), "{refused}");
    assert!(!refused.to_string().contains(HIDDEN_WORD));

    let resources = over_http(&service, bot, &["--method", "resources/list"]).unwrap();
    let uris: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|resource| resource["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [format!("lumbung://knowledge-bases/{KB}")]);
    let read = over_http(
        &service,
        bot,
        &[
            "--method",
            "resources/read",
            "--uri",
            &format!("lumbung://knowledge-bases/{KB}"),
        ],
    )
    .unwrap();
    let kb: Value = serde_json::from_str(read["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(kb["name"], KB);
    assert!(kb["escalation"].as_str().unwrap().contains("4357"));

    // Without a token, or with one the file does not hold, the client cannot connect.
    for token in [None, Some("lmb_not-a-token")] {
        let failed = over_http(&service, token, &["--method", "tools/list"]).unwrap_err();
        assert!(failed.contains("UNAUTHENTICATED"), "{token:?}: {failed}");
    }

    // `lumbung mcp` on stdio, calling the service over gRPC with its token.
    let bot = token.as_str();
    let found = over_stdio(
        &service,
        bot,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "search_knowledge",
            "--tool-arg",
            "query=VPN error 809",
        ],
    )
    .unwrap();
    let passages = found["structuredContent"]["passages"].as_array().unwrap();
    assert!(!passages.is_empty(), "{found}");
    assert!(
        passages
            .iter()
            .all(|p| p["citation"]["knowledgeBase"] == KB)
    );
    let resources = over_stdio(&service, bot, &["--method", "resources/list"]).unwrap();
    assert_eq!(
        resources["resources"].as_array().unwrap().len(),
        1,
        "{resources}"
    );
    let failed = over_stdio(
        &service,
        "lmb_not-a-token",
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "search_knowledge",
            "--tool-arg",
            "query=VPN",
        ],
    )
    .unwrap_err();
    assert!(failed.to_lowercase().contains("token"), "{failed}");
}
