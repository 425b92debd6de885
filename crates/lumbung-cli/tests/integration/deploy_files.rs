//! The deploy files (deploy/): they parse, and every lumbung configuration in them loads and
//! validates through lumbung's own loader with the environment each service or pod sets. No
//! container engine or cluster runs here; this is what can be checked without one.

use std::collections::BTreeSet;
use std::path::Path;

use lumbung_core::{Config, NodeRole, VectorStoreKind};
use serde_yaml::Value;

use crate::harness::repo_root;

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value: Value = serde::Deserialize::deserialize(document)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            // `<<: *anchor` merge keys, as compose resolves them.
            value.apply_merge().unwrap();
            value
        })
        .collect()
}

/// `${VAR:?message}` and `${VAR}` as compose would substitute them, with a placeholder.
fn substitute(value: &str) -> String {
    if value.starts_with("${") {
        "placeholder-secret".to_string()
    } else {
        value.to_string()
    }
}

fn load(config: &Path, env: Vec<(String, String)>) -> Config {
    Config::load_with_env(Some(config), env)
        .unwrap_or_else(|err| panic!("{}: {err}", config.display()))
}

/// Every key of every section, as `section.key`.
fn keys(table: &toml::Table) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (name, value) in table {
        match value.as_table() {
            Some(section) => keys.extend(section.keys().map(|key| format!("{name}.{key}"))),
            None => {
                keys.insert(name.clone());
            }
        }
    }
    keys
}

#[test]
fn the_example_configuration_lists_every_key_and_loads() {
    let path = repo_root().join("deploy/lumbung.toml");
    let config = load(&path, Vec::new());
    assert_eq!(config, Config::default(), "it gives every default");
    let written: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let all: toml::Table = toml::Table::try_from(Config::default()).unwrap();
    let missing: Vec<String> = keys(&all).difference(&keys(&written)).cloned().collect();
    assert!(
        missing.is_empty(),
        "deploy/lumbung.toml does not list {missing:?}"
    );
}

#[test]
fn the_compose_cluster_has_three_qdrant_nodes_one_ingest_node_and_balanced_query_nodes() {
    let dir = repo_root().join("deploy/compose");
    let compose = yaml_documents(&dir.join("compose.yaml")).remove(0);
    let services = compose["services"].as_mapping().unwrap();
    let qdrant: Vec<&Value> = services
        .iter()
        .filter(|(name, _)| name.as_str().unwrap().starts_with("qdrant-"))
        .map(|(_, service)| service)
        .collect();
    assert_eq!(qdrant.len(), 3);
    for node in &qdrant {
        assert_eq!(node["environment"]["QDRANT__CLUSTER__ENABLED"], "true");
        assert_eq!(node["image"], "qdrant/qdrant:v1.20.0");
    }
    let mut roles = Vec::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        if !name.starts_with("lumbung-") {
            continue;
        }
        assert_eq!(service["image"], "lumbung:local", "{name}");
        // Files mounted from the repository exist.
        for volume in service["volumes"].as_sequence().unwrap() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(dir.join(source).exists(), "{name}: {source}");
            }
        }
        let env = service["environment"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(key, value)| {
                let value = substitute(value.as_str().unwrap());
                (key.as_str().unwrap().to_string(), value)
            })
            .collect();
        let config = load(&dir.join("lumbung-cluster.toml"), env);
        assert_eq!(config.vector_store.kind, VectorStoreKind::Qdrant, "{name}");
        assert_eq!(config.vector_store.api_key, "placeholder-secret", "{name}");
        assert_eq!(config.vector_store.replication_factor, 2);
        let host = config
            .vector_store
            .url
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap()
            .to_string();
        assert!(services.contains_key(host.as_str()), "{name}: {host}");
        roles.push(config.server.role);
    }
    roles.sort_by_key(|role| format!("{role:?}"));
    assert_eq!(roles, [NodeRole::Ingest, NodeRole::Query, NodeRole::Query]);
    let nginx = std::fs::read_to_string(dir.join("nginx.conf")).unwrap();
    for upstream in [
        "lumbung-query-1:50051",
        "lumbung-query-2:50051",
        "grpc_pass",
        "lumbung-query-1:8080",
        "lumbung-query-2:8080",
        "proxy_set_header Host $host",
    ] {
        assert!(nginx.contains(upstream), "nginx.conf: {upstream}");
    }
}

#[test]
fn the_kubernetes_manifests_load_their_configuration_for_each_role() {
    let dir = repo_root().join("deploy/k8s");
    let documents = yaml_documents(&dir.join("lumbung.yaml"));
    let of_kind = |kind: &str| -> Vec<&Value> {
        documents.iter().filter(|doc| doc["kind"] == kind).collect()
    };
    let config_map = of_kind("ConfigMap")[0];
    let work = tempfile::tempdir().unwrap();
    let config_file = work.path().join("lumbung.toml");
    std::fs::write(
        &config_file,
        config_map["data"]["lumbung.toml"].as_str().unwrap(),
    )
    .unwrap();
    let secret = of_kind("Secret")[0];
    let secret_keys = secret["stringData"].as_mapping().unwrap();
    let tokens: toml::Table = secret_keys
        .get("tokens.toml")
        .and_then(Value::as_str)
        .unwrap()
        .parse()
        .unwrap();
    assert!(tokens.contains_key("token"));

    let mut roles = Vec::new();
    for deployment in of_kind("Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        let env = container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|entry| {
                let value = match entry.get("value") {
                    Some(value) => value.as_str().unwrap().to_string(),
                    None => {
                        let key = &entry["valueFrom"]["secretKeyRef"]["key"];
                        assert!(secret_keys.contains_key(key), "{name}: secret key {key:?}");
                        "placeholder-secret".to_string()
                    }
                };
                (entry["name"].as_str().unwrap().to_string(), value)
            })
            .collect();
        let config = load(&config_file, env);
        let service = match config.server.role {
            NodeRole::Query => "lumbung.v1.KnowledgeService",
            NodeRole::Ingest => {
                assert_eq!(deployment["spec"]["replicas"], 1, "one ingest node");
                assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
                "lumbung.v1.AdminService"
            }
            NodeRole::All => panic!("{name}: a cluster deployment runs roles"),
        };
        assert_eq!(
            container["readinessProbe"]["grpc"]["service"], service,
            "{name}"
        );
        assert_eq!(container["readinessProbe"]["grpc"]["port"], 50051, "{name}");
        let http = config.server.http_listen.expect("the HTTP port").port();
        assert!(
            container["ports"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|port| port["containerPort"] == http && port["name"] == "http"),
            "{name}: the container exposes the HTTP port {http}"
        );
        roles.push(config.server.role);
    }
    roles.sort_by_key(|role| format!("{role:?}"));
    assert_eq!(roles, [NodeRole::Ingest, NodeRole::Query]);
    assert_eq!(of_kind("Service").len(), 2);

    let values = yaml_documents(&dir.join("qdrant-values.yaml")).remove(0);
    assert_eq!(values["replicaCount"], 3);
    assert_eq!(values["config"]["cluster"]["enabled"], true);
}

#[test]
fn the_systemd_unit_serves_the_single_node() {
    let unit = std::fs::read_to_string(repo_root().join("deploy/systemd/lumbung.service")).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|line| line.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}"))
    };
    assert_eq!(
        value("ExecStart"),
        "/usr/local/bin/lumbung serve --config /etc/lumbung/lumbung.toml"
    );
    assert_eq!(
        value("KillSignal"),
        "SIGINT",
        "a clean stop between two documents"
    );
    assert_eq!(value("WantedBy"), "multi-user.target");
}
