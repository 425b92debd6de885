//! What nodes of one deployment tell each other through the cluster: the knowledge bases the
//! ingest node knows (with their settings), and which node may ingest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lumbung_core::VectorStoreConfig;
use qdrant_client::qdrant::{
    self, Condition, Filter, GetPoints, Modifier, PointId, PointStruct, Range, ScrollPoints,
    UpsertPoints, Value, WithPayloadSelector, WithVectorsSelector,
};

use crate::remote::{Connection, Remote};
use crate::store::{
    create_collection_once, ensure_keyword_indexes, sparse_collection, write_ordering,
};
use crate::{Error, Result};

const KIND_KEY: &str = "kind";
const KB_KIND: &str = "knowledge_base";
const LEASE_KIND: &str = "ingest_lease";
const KB_KEY: &str = "kb";
const ENTRY_KEY: &str = "entry";
const HOLDER_KEY: &str = "holder";
const EXPIRES_KEY: &str = "expires_at_ms";
/// The ingest lease's point; knowledge bases get ids from their names, never this one.
const LEASE_ID: u64 = 1;
/// How long a release may wait for the cluster.
const RELEASE_BUDGET: Duration = Duration::from_secs(2);
/// Knowledge bases read per scroll page.
const PAGE: u32 = 256;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A knowledge base's point id: FNV-1a of its name, with the top bit set so that it is never
/// [`LEASE_ID`].
fn kb_point_id(kb: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kb.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash | (1 << 63)
}

/// The deployment's directory in a small collection of its own (`{vector collection}-directory`):
/// one point per knowledge base with what query nodes need to resolve a request's scope (an
/// opaque JSON entry written by the ingest node), and the ingest lease.
///
/// The lease makes a second ingest node **refuse** to start rather than coordinate with the
/// first: two writers of one catalog's documents into the same collections would undo each
/// other's deletes. It is taken and renewed by a conditional upsert, which Qdrant applies on the
/// shard's leader one at a time: the point is written only if the caller already holds it or it
/// has expired, and a node learns whether it holds the lease by reading the point back.
pub struct ClusterDirectory {
    remote: Arc<Remote>,
    collection: String,
    read_budget: Duration,
    write_budget: Duration,
    ordering: qdrant::WriteOrdering,
}

/// Who holds the ingest lease, when another node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at_ms: i64,
}

impl ClusterDirectory {
    /// Opens the directory collection, creating it when there is none.
    pub fn open(
        connection: &Connection,
        config: &VectorStoreConfig,
        collection: &str,
    ) -> Result<Self> {
        let remote = connection.remote();
        let write_budget = Duration::from_secs(config.write_retry_seconds);
        let ordering = write_ordering(config);
        // Qdrant wants a vector of some kind per collection; no point here has one.
        let request = sparse_collection(collection, Modifier::None, config);
        create_collection_once(&remote, request, write_budget)?;
        ensure_keyword_indexes(
            &remote,
            collection,
            &[(KIND_KEY, false, false), (KB_KEY, false, false)],
            ordering,
            write_budget,
        )?;
        Ok(ClusterDirectory {
            remote,
            collection: collection.to_string(),
            read_budget: Duration::from_millis(config.search_retry_ms),
            write_budget,
            ordering,
        })
    }

    /// Replaces the published knowledge bases by `entries` (name, JSON): each is written, and
    /// those no longer in it are deleted.
    pub fn publish(&self, entries: &[(String, String)]) -> Result<()> {
        if !entries.is_empty() {
            let points = entries
                .iter()
                .map(|(kb, entry)| PointStruct {
                    id: Some(PointId::from(kb_point_id(kb))),
                    payload: HashMap::from([
                        (KIND_KEY.to_string(), Value::from(KB_KIND)),
                        (KB_KEY.to_string(), Value::from(kb.as_str())),
                        (ENTRY_KEY.to_string(), Value::from(entry.as_str())),
                    ]),
                    vectors: Some(qdrant::NamedVectors::default().into()),
                })
                .collect();
            let request = UpsertPoints {
                collection_name: self.collection.clone(),
                wait: Some(true),
                points,
                ordering: Some(self.ordering),
                ..UpsertPoints::default()
            };
            self.remote.call(
                "publish knowledge bases",
                self.write_budget,
                move |client| {
                    let request = request.clone();
                    async move { client.upsert_points(request).await }
                },
            )?;
        }
        let names: Vec<String> = entries.iter().map(|(kb, _)| kb.clone()).collect();
        let mut gone = Filter::must([Condition::matches(KIND_KEY, KB_KIND.to_string())]);
        if !names.is_empty() {
            gone.must_not = vec![Condition::matches(KB_KEY, names)];
        }
        self.remote.delete_where(
            "unpublish knowledge bases",
            &self.collection,
            gone,
            self.ordering,
            self.write_budget,
        )
    }

    /// The published knowledge bases (name, JSON), in no particular order.
    pub fn knowledge_bases(&self) -> Result<Vec<(String, String)>> {
        let mut entries = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let request = ScrollPoints {
                collection_name: self.collection.clone(),
                filter: Some(Filter::must([Condition::matches(
                    KIND_KEY,
                    KB_KIND.to_string(),
                )])),
                offset: offset.take(),
                limit: Some(PAGE),
                with_payload: Some(WithPayloadSelector::from(true)),
                with_vectors: Some(WithVectorsSelector::from(false)),
                ..ScrollPoints::default()
            };
            let page =
                self.remote
                    .call("read knowledge bases", self.read_budget, move |client| {
                        let request = request.clone();
                        async move { client.scroll(request).await }
                    })?;
            for point in page.result {
                let text = |key: &str| point.payload.get(key).and_then(|v| v.as_str()).cloned();
                match (text(KB_KEY), text(ENTRY_KEY)) {
                    (Some(kb), Some(entry)) => entries.push((kb, entry)),
                    _ => {
                        return Err(Error::InvalidPoint(
                            "a knowledge base without its entry".into(),
                        ));
                    }
                }
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(entries),
            }
        }
    }

    /// Takes (or renews) the ingest lease for `holder` until `ttl` from now. Fails with the
    /// current holder when another node holds an unexpired lease.
    pub fn claim_ingest_lease(
        &self,
        holder: &str,
        ttl: Duration,
    ) -> Result<std::result::Result<(), LeaseHolder>> {
        let now = now_ms();
        let point = PointStruct {
            id: Some(PointId::from(LEASE_ID)),
            payload: HashMap::from([
                (KIND_KEY.to_string(), Value::from(LEASE_KIND)),
                (HOLDER_KEY.to_string(), Value::from(holder)),
                (
                    EXPIRES_KEY.to_string(),
                    Value::from(now + ttl.as_millis() as i64),
                ),
            ]),
            vectors: Some(qdrant::NamedVectors::default().into()),
        };
        // Written only over a lease of our own or an expired one; a missing point is created.
        let ours_or_expired = Filter::should([
            Condition::matches(HOLDER_KEY, holder.to_string()),
            Condition::range(
                EXPIRES_KEY,
                Range {
                    lt: Some(now as f64),
                    ..Range::default()
                },
            ),
        ]);
        let request = UpsertPoints {
            collection_name: self.collection.clone(),
            wait: Some(true),
            points: vec![point],
            ordering: Some(qdrant::WriteOrdering {
                r#type: qdrant::WriteOrderingType::Strong as i32,
            }),
            update_filter: Some(ours_or_expired),
            ..UpsertPoints::default()
        };
        self.remote
            .call("claim ingest lease", self.write_budget, move |client| {
                let request = request.clone();
                async move { client.upsert_points(request).await }
            })?;
        let current = self.lease_holder()?;
        Ok(match current {
            Some(current) if current.holder != holder => Err(current),
            _ => Ok(()),
        })
    }

    /// Gives the lease up (at a clean shutdown), if `holder` has it. Tries for two seconds at
    /// most: a shutdown must not wait for a cluster that is down (the lease then expires).
    pub fn release_ingest_lease(&self, holder: &str) -> Result<()> {
        let ours = Filter::must([
            Condition::has_id([LEASE_ID]),
            Condition::matches(HOLDER_KEY, holder.to_string()),
        ]);
        self.remote.delete_where(
            "release ingest lease",
            &self.collection,
            ours,
            self.ordering,
            RELEASE_BUDGET,
        )
    }

    fn lease_holder(&self) -> Result<Option<LeaseHolder>> {
        let request = GetPoints {
            collection_name: self.collection.clone(),
            ids: vec![PointId::from(LEASE_ID)],
            with_payload: Some(WithPayloadSelector::from(true)),
            with_vectors: Some(WithVectorsSelector::from(false)),
            ..GetPoints::default()
        };
        let points = self
            .remote
            .call("read ingest lease", self.write_budget, move |client| {
                let request = request.clone();
                async move { client.get_points(request).await }
            })?
            .result;
        Ok(points.into_iter().next().map(|point| LeaseHolder {
            holder: point
                .payload
                .get(HOLDER_KEY)
                .and_then(|v| v.as_str())
                .cloned()
                .unwrap_or_default(),
            expires_at_ms: point
                .payload
                .get(EXPIRES_KEY)
                .and_then(|v| v.as_integer())
                .unwrap_or_default(),
        }))
    }
}
