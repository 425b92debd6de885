//! The HTTP port: the JSON API against its OpenAPI document, its errors, Dify's External
//! Knowledge API case by case, and the console's login and scope, through a real HTTP client.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness;

const KB: &str = "it-helpdesk";
/// A knowledge base the reader token may not see; any response carrying this word leaks it.
const HIDDEN_KB: &str = "beta";
const SECRET: &str = "Zirconium";

struct Fixture {
    server: harness::TestServer,
    base: String,
    admin: String,
    /// A reader of `KB` only.
    reader: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A server with a token file over two of the sample helpdesk articles and a hidden
/// knowledge base, synced.
async fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = harness::test_config(dir.path());
    let samples = harness::repo_root().join("ingest").join(KB);
    let folder = config.ingest_root.join(KB);
    std::fs::create_dir_all(&folder).unwrap();
    for file in ["kb.toml", "vpn-access.md", "password-reset.md"] {
        std::fs::copy(samples.join(file), folder.join(file)).unwrap();
    }
    harness::write_document(
        &config,
        HIDDEN_KB,
        "alloys.md",
        &format!("# Alloys\n\nThe {SECRET} alloy for the valve seats is ordered from plant 7.\n"),
    );
    let (admin, admin_entry) = lumbung_server::new_token("ops", "admin", &["*".into()]).unwrap();
    let (reader, reader_entry) =
        lumbung_server::new_token("helpdesk-bot", "reader", &[KB.into()]).unwrap();
    let tokens_file = dir.path().join("tokens.toml");
    std::fs::write(&tokens_file, format!("{admin_entry}\n{reader_entry}")).unwrap();
    config.server.tokens_file = Some(tokens_file);
    let server = harness::TestServer::start(config).await;
    let report = server.app.sync_all().await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Fixture {
        base: format!("http://{}", server.http),
        server,
        admin,
        reader,
        client,
        _dir: dir,
    }
}

impl Fixture {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("{path}: not JSON ({err}): {text}"));
        (status, headers, value)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (status, _, value) = self.send(Method::POST, path, token, Some(&body)).await;
        (status, value)
    }
}

/// The schema `reference` (`#/components/schemas/X`) points at in `document`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference}"))
        }
        None => schema,
    }
}

/// Every field of `value` is one `schema` declares, recursively through objects and arrays:
/// a handler that answers a field the document does not name fails.
fn assert_declared(document: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(document, schema);
    match value {
        Value::Object(fields) => {
            let Some(properties) = schema["properties"].as_object() else {
                // A free-form object (Dify's record metadata).
                assert!(
                    schema["additionalProperties"] != Value::Bool(false),
                    "{at}: {schema}"
                );
                return;
            };
            for (name, field) in fields {
                let declared = properties
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} is not in the OpenAPI document"));
                assert_declared(document, declared, field, &format!("{at}.{name}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_declared(document, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The request the document's examples make of one operation: its path with the path
/// parameters filled in and its query string.
fn example_path(path: &str, operation: &Value) -> String {
    let mut filled = path.to_string();
    let mut query = Vec::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap();
        let Some(example) = parameter.get("example") else {
            continue;
        };
        let text = match example {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        match parameter["in"].as_str().unwrap() {
            "path" => filled = filled.replace(&format!("{{{name}}}"), &text),
            "query" => query.push(format!("{name}={text}")),
            other => panic!("parameter {name} in {other}"),
        }
    }
    assert!(
        !filled.contains('{'),
        "{path}: a path parameter has no example"
    );
    if query.is_empty() {
        filled
    } else {
        format!("{filled}?{}", query.join("&"))
    }
}

/// Every schema of the OpenAPI document named after a message of the proto declares exactly
/// that message's fields by their JSON names, so that the document cannot fall behind the API.
#[test]
fn the_openapi_schemas_declare_the_proto_messages_fields() {
    use prost::Message;
    let document: Value = serde_json::from_str(
        &std::fs::read_to_string(harness::repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    let descriptors =
        prost_types::FileDescriptorSet::decode(lumbung_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut messages = std::collections::BTreeMap::new();
    for file in descriptors
        .file
        .iter()
        .filter(|f| f.package() == "lumbung.v1")
    {
        for message in &file.message_type {
            let fields: std::collections::BTreeSet<String> = message
                .field
                .iter()
                .map(|field| field.json_name().to_string())
                .collect();
            messages.insert(message.name().to_string(), fields);
        }
    }
    let mut checked = 0;
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        let Some(fields) = messages.get(name) else {
            continue;
        };
        let declared: std::collections::BTreeSet<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(&declared, fields, "schema {name}");
        checked += 1;
    }
    assert!(checked >= 10, "{checked} schemas are proto messages");
}

/// The document the server serves is the one checked in; every operation in it, called with
/// its examples and a token, succeeds and answers only fields the document declares; without
/// a token each is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_openapi_document_answers_with_a_token() {
    let fixture = start().await;
    let (status, _, served) = fixture.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(harness::repo_root().join("api/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(served, checked_in);
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));

    let mut operations = 0;
    for (path, methods) in served["paths"].as_object().unwrap() {
        for (method, operation) in methods.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let target = example_path(path, operation);
            let body = operation
                .pointer("/requestBody/content/application~1json/example")
                .cloned();
            if method == Method::POST {
                assert!(body.is_some(), "{path}: no example body");
            }
            let (status, _, answer) = fixture
                .send(method.clone(), &target, Some(&fixture.admin), body.as_ref())
                .await;
            assert_eq!(status, StatusCode::OK, "{method} {target}: {answer}");
            let schema = operation
                .pointer("/responses/200/content/application~1json/schema")
                .unwrap_or_else(|| panic!("{path}: no 200 schema"));
            assert_declared(&served, schema, &answer, path);

            // Without a token, and with one the file does not hold.
            for token in [None, Some("lmb_not-a-token")] {
                let (status, headers, refused) = fixture
                    .send(method.clone(), &target, token, body.as_ref())
                    .await;
                if path == "/retrieval" {
                    // Dify's own convention: 403 with its error codes.
                    assert_eq!(status, StatusCode::FORBIDDEN, "{target}: {refused}");
                    assert!(refused["error_code"] == 1001 || refused["error_code"] == 1002);
                } else {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{target}: {refused}");
                    assert_eq!(refused["code"], "UNAUTHENTICATED");
                    assert!(
                        headers["www-authenticate"]
                            .to_str()
                            .unwrap()
                            .starts_with("Bearer")
                    );
                }
            }
            operations += 1;
        }
    }
    assert!(operations >= 6, "{operations} operations");
    fixture.server.stop().await;
}

/// Errors are JSON bodies with the gRPC code's name under its HTTP status; an invalid request
/// names its field; a hidden knowledge base reads like a missing one, in its status and gaps
/// too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_errors_carry_the_grpc_code_and_name_the_field() {
    let fixture = start().await;
    let reader = Some(fixture.reader.as_str());

    let (status, found) = fixture
        .post(
            "/v1/search",
            reader,
            json!({"query": "VPN error 809", "topK": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let passages = found["passages"].as_array().unwrap();
    assert!(!passages.is_empty() && passages.len() <= 2, "{found}");
    for passage in passages {
        assert_eq!(passage["citation"]["knowledgeBase"], KB);
        assert!(
            passage["citation"]["documentPath"]
                .as_str()
                .unwrap()
                .ends_with(".md")
        );
        assert!(!passage["text"].as_str().unwrap().contains(SECRET));
    }

    let cases: [(&str, String, &str); 5] = [
        (
            "/v1/search",
            json!({"query": "vpn", "topK": "many"}).to_string(),
            "topK",
        ),
        (
            "/v1/search",
            json!({"query": "vpn", "topK": 100000}).to_string(),
            "top_k",
        ),
        ("/v1/search", json!({"query": " "}).to_string(), "query"),
        (
            "/v1/search",
            json!({"query": "vpn", "retriever": "SIDEWAYS"}).to_string(),
            "retriever",
        ),
        ("/v1/ask", "{\"question\": \"vpn\"".to_string(), "body"),
    ];
    for (path, body, field) in cases {
        let response = fixture
            .client
            .post(format!("{}{path}", fixture.base))
            .bearer_auth(&fixture.reader)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["code"], "INVALID_ARGUMENT", "{body}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{body}: {message} does not name {field}"
        );
    }

    // A body over server.max_request_bytes: OUT_OF_RANGE, as an oversized gRPC message is.
    let oversized = json!({"query": "x".repeat(100_000)});
    let (status, too_large) = fixture.post("/v1/search", reader, oversized).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{too_large}");
    assert_eq!(too_large["code"], "OUT_OF_RANGE");

    // Missing and hidden knowledge bases: the same 404, word for word but the name.
    let (status, missing) = fixture
        .post(
            "/v1/ask",
            reader,
            json!({"question": "vpn?", "knowledgeBases": ["gamma"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], "NOT_FOUND");
    let (status, hidden) = fixture
        .post(
            "/v1/ask",
            reader,
            json!({"question": "vpn?", "knowledgeBases": [HIDDEN_KB]}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        hidden["message"]
            .as_str()
            .unwrap()
            .replace(HIDDEN_KB, "gamma"),
        missing["message"].as_str().unwrap()
    );

    // The list shows the reader its knowledge base only; status and gaps are the admin's.
    let (status, _, listed) = fixture
        .send(Method::GET, "/v1/knowledge-bases", reader, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listed["knowledgeBases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kb| kb["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [KB]);
    for what in ["status", "gaps"] {
        let (status, _, own) = fixture
            .send(
                Method::GET,
                &format!("/v1/knowledge-bases/{KB}/{what}"),
                reader,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {own}");
        let (status, _, hidden) = fixture
            .send(
                Method::GET,
                &format!("/v1/knowledge-bases/{HIDDEN_KB}/{what}"),
                reader,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {hidden}");
        assert_eq!(hidden["code"], "NOT_FOUND");
    }
    let (status, _, bad_time) = fixture
        .send(
            Method::GET,
            &format!("/v1/knowledge-bases/{KB}/gaps?since=yesterday"),
            Some(&fixture.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad_time["message"].as_str().unwrap().contains("since"));

    // A request id given is the one answered, on success and failure alike.
    for body in [json!({"query": "vpn"}), json!({"query": ""})] {
        let response = fixture
            .client
            .post(format!("{}/v1/search", fixture.base))
            .bearer_auth(&fixture.reader)
            .header("x-request-id", "trace-42")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-42", "{body}");
    }
    fixture.server.stop().await;
}

fn retrieval(knowledge_id: &str, query: &str, top_k: u32, score_threshold: f64) -> Value {
    json!({
        "knowledge_id": knowledge_id,
        "query": query,
        "retrieval_setting": {"top_k": top_k, "score_threshold": score_threshold}
    })
}

/// Dify's External Knowledge API, case by case as its specification lists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dify_retrieval_follows_the_specification() {
    let fixture = start().await;
    let reader = Some(fixture.reader.as_str());

    // Success: records with content, a score in 0..1, a title and a metadata object that
    // carries the citation; at most top_k of them, best first.
    let (status, found) = fixture
        .post("/retrieval", reader, retrieval(KB, "VPN error 809", 3, 0.0))
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let records = found["records"].as_array().unwrap();
    assert!(!records.is_empty() && records.len() <= 3, "{found}");
    let mut previous = f64::INFINITY;
    for record in records {
        assert!(!record["content"].as_str().unwrap().is_empty());
        let score = record["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{record}");
        assert!(!record["title"].as_str().unwrap().is_empty(), "{record}");
        let metadata = record["metadata"].as_object().unwrap();
        assert_eq!(metadata["knowledge_base"], KB);
        assert!(metadata["document_path"].as_str().unwrap().ends_with(".md"));
        assert!(metadata.contains_key("chunk_id"));
        let fused = metadata["fused_score"].as_f64().unwrap();
        assert!(fused <= previous, "records are in hybrid search's order");
        previous = fused;
    }
    // The best record is the section on that error: its heading names it, in the metadata.
    assert!(
        records[0]["metadata"]["heading_path"]
            .to_string()
            .contains("809"),
        "{found}"
    );

    // score_threshold drops the records below it; at 1.0 none is left, and that is a success.
    let threshold = 0.8;
    let (status, strict) = fixture
        .post(
            "/retrieval",
            reader,
            retrieval(KB, "VPN error 809", 10, threshold),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for record in strict["records"].as_array().unwrap() {
        assert!(record["score"].as_f64().unwrap() >= threshold, "{record}");
    }
    let (status, none) = fixture
        .post(
            "/retrieval",
            reader,
            retrieval(KB, "VPN error 809", 10, 1.0),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(none, json!({"records": []}));

    // metadata_condition: Dify's filter over the records' metadata.
    let mut filtered = retrieval(KB, "password", 5, 0.0);
    filtered["metadata_condition"] = json!({
        "logical_operator": "and",
        "conditions": [{"name": ["document_path"], "comparison_operator": "is", "value": "vpn-access.md"}]
    });
    let (status, only_vpn) = fixture.post("/retrieval", reader, filtered).await;
    assert_eq!(status, StatusCode::OK, "{only_vpn}");
    let records = only_vpn["records"].as_array().unwrap();
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|r| r["metadata"]["document_path"] == "vpn-access.md"),
        "{only_vpn}"
    );

    // 1001: an Authorization header that is not `Bearer <key>`; 1002: a key that is no token.
    let body = retrieval(KB, "VPN", 3, 0.0);
    for authorization in [None, Some("Basic aGVsbG86d29ybGQ="), Some("Bearer ")] {
        let mut request = fixture
            .client
            .post(format!("{}/retrieval", fixture.base))
            .json(&body);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{authorization:?}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error_code"], 1001, "{authorization:?}: {error}");
        assert!(error["error_msg"].as_str().unwrap().contains("Bearer"));
    }
    let (status, failed) = fixture
        .post("/retrieval", Some("lmb_not-a-token"), body.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(failed["error_code"], 1002, "{failed}");

    // 2001: a knowledge base that does not exist, or that the key may not read.
    for knowledge_id in ["gamma", HIDDEN_KB] {
        let (status, missing) = fixture
            .post(
                "/retrieval",
                reader,
                retrieval(knowledge_id, "alloy", 3, 0.0),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(missing["error_code"], 2001, "{missing}");
        assert!(!missing.to_string().contains(SECRET));
    }
    let (status, found) = fixture
        .post(
            "/retrieval",
            Some(&fixture.admin),
            retrieval(HIDDEN_KB, "alloy", 3, 0.0),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(found.to_string().contains(SECRET), "the admin reads beta");

    // A malformed request: 400, naming the field.
    for (body, field) in [
        (
            json!({"knowledge_id": KB, "retrieval_setting": {"top_k": 3, "score_threshold": 0.5}}),
            "query",
        ),
        (retrieval(KB, "VPN", 0, 0.5), "top_k"),
        (retrieval(KB, "VPN", 3, 1.5), "score_threshold"),
        (
            json!({"knowledge_id": KB, "query": "VPN", "retrieval_setting": {"top_k": "three", "score_threshold": 0.5}}),
            "retrieval_setting.top_k",
        ),
    ] {
        let (status, error) = fixture.post("/retrieval", reader, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error_code"], 400);
        assert!(
            error["error_msg"].as_str().unwrap().contains(field),
            "{body}: {error} does not name {field}"
        );
    }
    fixture.server.stop().await;
}

/// The console needs a login; a token's login shows its knowledge bases only, and a page of
/// another is missing; MCP over HTTP refuses a request without a token before reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_mcp_need_a_valid_token() {
    let fixture = start().await;
    let get = |path: &str, cookie: Option<&str>| {
        let mut request = fixture.client.get(format!("{}{path}", fixture.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    for path in ["/console", &format!("/console/kb/{KB}")] {
        let response = get(path, None).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(response.headers()["location"], "/console/login");
    }
    let login = |token: String| {
        fixture
            .client
            .post(format!("{}/console/login", fixture.base))
            .form(&[("token", token)])
            .send()
    };
    let refused = login("lmb_not-a-token".into()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("id=\"error\""));

    let accepted = login(fixture.reader.clone()).await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let set_cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let home = get("/console", Some(&cookie)).await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    assert!(home.contains(&format!("/console/kb/{KB}")), "{home}");
    assert!(!home.contains(HIDDEN_KB), "{home}");
    let page = get(&format!("/console/kb/{KB}"), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("vpn-access.md"));
    let hidden = get(&format!("/console/kb/{HIDDEN_KB}"), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert!(!hidden.text().await.unwrap().contains(SECRET));
    let document = get(
        &format!("/console/kb/{HIDDEN_KB}/document?path=alloys.md"),
        Some(&cookie),
    )
    .await
    .unwrap();
    assert_eq!(document.status(), StatusCode::NOT_FOUND);
    assert!(!document.text().await.unwrap().contains(SECRET));

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}}
    });
    for token in [None, Some("lmb_not-a-token")] {
        let mut request = fixture
            .client
            .post(format!("{}/mcp", fixture.base))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let response = fixture
        .client
        .post(format!("{}/mcp", fixture.base))
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&fixture.reader)
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let initialized: Value = response.json().await.unwrap();
    assert_eq!(initialized["result"]["serverInfo"]["name"], "lumbung");
    fixture.server.stop().await;
}

/// Without a token file the loopback port is the local administrator's, as gRPC's is: the API
/// answers without a token and the console opens without a login, for loopback's names only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_file_loopback_needs_no_token() {
    let server = harness::shared_server();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("http://{}", server.http);
    let response = client
        .post(format!("{base}/v1/search"))
        .json(&json!({"query": "叉车限速", "knowledgeBases": ["safety-zh"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let found: Value = response.json().await.unwrap();
    assert!(!found["passages"].as_array().unwrap().is_empty(), "{found}");
    let login = client
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let home = client.get(format!("{base}/console")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    let home = home.text().await.unwrap();
    for kb in harness::SAMPLE_KBS {
        assert!(home.contains(&format!("/console/kb/{kb}")), "{kb}");
    }

    // A page of another site whose name was rebound to 127.0.0.1 comes with its own Host: the
    // open port does not serve it, on any path.
    for path in ["/v1/knowledge-bases", "/console", "/retrieval", "/mcp"] {
        let response = client
            .get(format!("{base}{path}"))
            .header("host", "attacker.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

/// More knowledge bases than one page of `ListKnowledgeBases` holds (100): MCP lists and reads
/// them all, and the console shows them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_and_the_console_see_knowledge_bases_past_the_first_page() {
    let dir = tempfile::tempdir().unwrap();
    let config = harness::test_config(dir.path());
    let names: Vec<String> = (0..120).map(|i| format!("line-{i:03}")).collect();
    for name in &names {
        let folder = config.ingest_root.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("kb.toml"), format!("title = \"Line {name}\"\n")).unwrap();
    }
    let server = harness::TestServer::start(config).await;
    server.app.sync_all().await.unwrap();
    let base = format!("http://{}", server.http);
    let client = reqwest::Client::new();
    let last = names.last().unwrap();

    let home = client
        .get(format!("{base}/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains(&format!("/console/kb/{last}")), "{home}");

    let mcp = |id: u32, method: &str, params: Value| {
        client
            .post(format!("{base}/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
    };
    let initialize = json!({"protocolVersion": "2025-06-18", "capabilities": {},
                            "clientInfo": {"name": "test", "version": "1"}});
    assert!(
        mcp(1, "initialize", initialize)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let listed: Value = mcp(2, "resources/list", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resources = listed["result"]["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(resources.len(), names.len());
    let uri = format!("lumbung://knowledge-bases/{last}");
    let read: Value = mcp(3, "resources/read", json!({"uri": uri}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = read["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("{read}"));
    assert!(text.contains(&format!("Line {last}")), "{text}");
    server.stop().await;
}
