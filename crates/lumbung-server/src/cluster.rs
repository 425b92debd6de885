//! Nodes of one cluster deployment: the ingest node publishes its knowledge bases and holds
//! the ingest lease; query nodes read the knowledge bases from the cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use lumbung_core::{Generation, KbGeneration, KbName, ModelName, VectorStoreConfig};
use lumbung_ingest::{Ingestor, KbEntry, KbSettings, KbSummary, Registry};
use lumbung_qdrant::ClusterDirectory;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What query nodes learn of a knowledge base: its settings (for scopes, escalation and
/// listings) and the counts `ListKnowledgeBases` shows.
#[derive(Debug, Serialize, Deserialize)]
struct PublishedKb {
    settings: Option<KbSettings>,
    /// Why `kb.toml` could not be read, instead of `settings`.
    settings_error: Option<String>,
    indexed: u32,
    failed: u32,
    skipped: u32,
    chunks: u64,
    last_change_ms: Option<i64>,
    /// The generation that serves; absent in entries published before generations.
    #[serde(default)]
    generation: Generation,
    /// Its embedding model; absent in entries published before several models were served,
    /// which were all `[embedding]`'s.
    #[serde(default)]
    model: Option<ModelName>,
}

fn to_published(registry: &Registry) -> Result<Vec<(String, String)>> {
    registry
        .iter()
        .map(|(kb, entry)| {
            let (settings, settings_error) = match &entry.settings {
                Ok(settings) => (Some(settings.clone()), None),
                Err(reason) => (None, Some(reason.clone())),
            };
            let published = PublishedKb {
                settings,
                settings_error,
                indexed: entry.summary.indexed,
                failed: entry.summary.failed,
                skipped: entry.summary.skipped,
                chunks: entry.summary.chunks,
                last_change_ms: entry.summary.last_change_ms,
                generation: entry.active.generation(),
                model: Some(entry.model.clone()),
            };
            let json = serde_json::to_string(&published)
                .map_err(|err| Error::ClusterDirectory(err.to_string()))?;
            Ok((kb.to_string(), json))
        })
        .collect()
}

fn from_published(entries: Vec<(String, String)>, default_model: &ModelName) -> Result<Registry> {
    let mut registry = Registry::new();
    for (kb, json) in entries {
        let published: PublishedKb = serde_json::from_str(&json)
            .map_err(|err| Error::ClusterDirectory(format!("{kb}: {err}")))?;
        let settings = match (published.settings, published.settings_error) {
            (Some(settings), _) => Ok(settings),
            (None, Some(reason)) => Err(reason),
            (None, None) => Ok(KbSettings::default()),
        };
        let summary = KbSummary {
            indexed: published.indexed,
            failed: published.failed,
            skipped: published.skipped,
            chunks: published.chunks,
            last_change_ms: published.last_change_ms,
            ..KbSummary::default()
        };
        let kb = KbName::new(kb)?;
        let active = KbGeneration::new(kb.clone(), published.generation);
        registry.insert(
            kb,
            KbEntry {
                settings,
                summary,
                active,
                model: published.model.unwrap_or_else(|| default_model.clone()),
            },
        );
    }
    Ok(registry)
}

/// This process's name in the ingest lease: host, process and start time.
#[allow(
    clippy::disallowed_methods,
    reason = "read once at start-up, from App::open (blocking by contract)"
)]
fn node_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string());
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{host}/{}/{started:x}", std::process::id())
}

/// The ingest side: holds the lease and publishes the registry whenever it changes, from a
/// thread of its own that ends when the ingestor is dropped. Losing the lease (another node
/// took it after this one could not renew it in time) stops ingest: the watcher's health goes
/// NOT_SERVING and the node should be restarted.
pub struct IngestLease {
    directory: Arc<ClusterDirectory>,
    holder: String,
    lost: Arc<AtomicBool>,
    /// Set before the lease is released, so that the keeper does not renew it afterwards.
    released: Arc<AtomicBool>,
}

impl IngestLease {
    /// Takes the ingest lease or fails naming the node that holds it; publishes the registry
    /// once, then keeps both up to date in the background.
    pub fn take(
        directory: Arc<ClusterDirectory>,
        ingestor: &Arc<Ingestor>,
        config: &VectorStoreConfig,
    ) -> Result<IngestLease> {
        let holder = node_name();
        let ttl = Duration::from_secs(config.ingest_lease_seconds);
        if let Err(other) = directory.claim_ingest_lease(&holder, ttl)? {
            let left = (other.expires_at_ms - now_ms()).max(0) / 1000;
            return Err(Error::Startup(format!(
                "another node ({}) writes to this cluster and holds its ingest lease for {left} \
                 more seconds: one ingest node per cluster (start this one with --role query, \
                 or stop the other first)",
                other.holder
            )));
        }
        tracing::info!(holder, "ingest lease taken");
        let lost = Arc::new(AtomicBool::new(false));
        let released = Arc::new(AtomicBool::new(false));
        let lease = IngestLease {
            directory: Arc::clone(&directory),
            holder: holder.clone(),
            lost: Arc::clone(&lost),
            released: Arc::clone(&released),
        };
        let registry = ingestor.registry();
        directory.publish(&to_published(&registry)?)?;
        let ingestor = Arc::downgrade(ingestor);
        std::thread::Builder::new()
            .name("ingest-lease".to_string())
            .spawn(move || {
                let keeper = Keeper {
                    directory: &directory,
                    holder: &holder,
                    ttl,
                    lost: &lost,
                    released: &released,
                };
                keeper.run(&ingestor, registry);
            })
            .map_err(Error::Io)?;
        Ok(lease)
    }

    /// False once another node has taken the lease.
    pub fn held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for IngestLease {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        if let Err(err) = self.directory.release_ingest_lease(&self.holder) {
            tracing::warn!(error = %err, "ingest lease not released; it expires by itself");
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What the ingest lease's thread works with.
struct Keeper<'a> {
    directory: &'a ClusterDirectory,
    holder: &'a str,
    ttl: Duration,
    lost: &'a AtomicBool,
    released: &'a AtomicBool,
}

impl Keeper<'_> {
    /// Renews the lease every third of its time and publishes the registry when it changes,
    /// until the ingestor is dropped, the lease released, or another node has taken it.
    #[allow(clippy::disallowed_methods, reason = "runs on a thread of its own")]
    fn run(&self, ingestor: &Weak<Ingestor>, mut published: Arc<Registry>) {
        let renew_every = self.ttl / 3;
        let publish_every = Duration::from_millis(500);
        let mut since_renewal = Duration::ZERO;
        loop {
            std::thread::sleep(publish_every);
            let Some(ingestor) = ingestor.upgrade() else {
                return;
            };
            since_renewal += publish_every;
            if since_renewal >= renew_every {
                since_renewal = Duration::ZERO;
                if self.released.load(Ordering::SeqCst) {
                    return;
                }
                match self.directory.claim_ingest_lease(self.holder, self.ttl) {
                    Ok(Ok(())) => {}
                    Ok(Err(other)) => {
                        tracing::error!(
                            holder = other.holder,
                            "ingest lease lost to another node: this node stops ingesting"
                        );
                        self.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(err) => tracing::warn!(error = %err, "ingest lease not renewed; retrying"),
                }
            }
            let registry = ingestor.registry();
            if !Arc::ptr_eq(&registry, &published) {
                let outcome = to_published(&registry)
                    .and_then(|entries| Ok(self.directory.publish(&entries)?));
                match outcome {
                    Ok(()) => published = registry,
                    Err(err) => {
                        tracing::warn!(error = %err, "knowledge bases not published; retrying")
                    }
                }
            }
        }
    }
}

/// The query side: the knowledge bases the ingest node published, read again every
/// `directory_refresh_ms` by a thread that ends when this is dropped.
pub struct PublishedRegistry {
    current: RwLock<Arc<Registry>>,
}

impl PublishedRegistry {
    /// Reads the published knowledge bases once (failing if the cluster cannot be read), then
    /// follows them.
    #[allow(
        clippy::disallowed_methods,
        reason = "the follower runs on a thread of its own"
    )]
    /// `default_model` is `[embedding]`'s, the model of entries that name none.
    pub fn follow(
        directory: ClusterDirectory,
        every: Duration,
        default_model: ModelName,
    ) -> Result<Arc<PublishedRegistry>> {
        let first = from_published(directory.knowledge_bases()?, &default_model)?;
        let registry = Arc::new(PublishedRegistry {
            current: RwLock::new(Arc::new(first)),
        });
        let weak = Arc::downgrade(&registry);
        std::thread::Builder::new()
            .name("directory".to_string())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(registry) = weak.upgrade() else {
                        return;
                    };
                    match directory
                        .knowledge_bases()
                        .map_err(Error::from)
                        .and_then(|entries| from_published(entries, &default_model))
                    {
                        Ok(read) => {
                            *registry
                                .current
                                .write()
                                .unwrap_or_else(PoisonError::into_inner) = Arc::new(read);
                        }
                        // The last one read keeps answering.
                        Err(err) => tracing::warn!(error = %err, "knowledge bases not read"),
                    }
                }
            })
            .map_err(Error::Io)?;
        Ok(registry)
    }

    pub fn get(&self) -> Arc<Registry> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}
