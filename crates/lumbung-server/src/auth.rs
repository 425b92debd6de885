//! Who is calling: API tokens from the file `server.tokens_file` names, each mapped to a role
//! and the knowledge bases it may read.
//!
//! Only the tokens' BLAKE3 hashes are stored, so the file can be read by operators without
//! giving away a token. The file is checked for changes every second by a thread of its own and
//! swapped whole, so that a revoked token stops working without a restart and no request waits
//! on the disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use lumbung_core::KbName;
use serde::Deserialize;
use tonic::metadata::MetadataMap;

use crate::limits::TokenLimits;
use crate::{Error, Result};

/// How often the token file is checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search, Ask, and the status and gaps of its knowledge bases.
    Reader,
    /// Everything, including reindexing and the answer decision.
    Admin,
}

/// The identity a request was made with.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The token's name (what `kb.toml` `readers` lists); empty without a token file.
    pub name: String,
    pub role: Role,
    /// Knowledge-base names or patterns (`*` for any run of characters).
    knowledge_bases: Vec<String>,
    pub limits: TokenLimits,
}

impl Caller {
    /// The caller of a service without a token file: it listens on loopback only, and whoever
    /// reaches it there owns the machine anyway.
    pub fn local_admin() -> Caller {
        Caller {
            name: String::new(),
            role: Role::Admin,
            knowledge_bases: vec!["*".to_string()],
            limits: TokenLimits::NONE,
        }
    }

    /// Whether the caller may read `kb`, whose `kb.toml` lists `readers`. The token's patterns
    /// grant; for readers, `readers` (when not empty) can only narrow them, so a folder cannot
    /// open itself to callers its token does not cover. Administrators are not narrowed: they
    /// must reach every knowledge base their patterns cover to run it.
    pub fn may_read(&self, kb: &KbName, readers: &[String]) -> bool {
        let granted = self
            .knowledge_bases
            .iter()
            .any(|pattern| matches_pattern(pattern, kb.as_str()));
        granted && (self.role == Role::Admin || readers.is_empty() || readers.contains(&self.name))
    }

    pub fn require_admin(&self) -> Result<()> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Reader => Err(Error::PermissionDenied(format!(
                "token {:?} is a reader; this needs the admin role",
                self.name
            ))),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default, rename = "token")]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    /// The BLAKE3 hash of the token, hex.
    blake3: String,
    role: Role,
    #[serde(default)]
    knowledge_bases: Vec<String>,
    /// Requests in flight at once; `server.token_max_concurrent` when absent, 0 for no limit.
    max_concurrent: Option<u32>,
    /// Requests started per second (bursts of a second's worth);
    /// `server.token_requests_per_second` when absent, 0 for no limit.
    requests_per_second: Option<f64>,
}

struct Tokens {
    by_hash: Vec<(blake3::Hash, Caller)>,
    modified: Option<SystemTime>,
}

impl Tokens {
    #[allow(
        clippy::disallowed_methods,
        reason = "at start-up and on the token file's own thread"
    )]
    fn load(path: &Path, defaults: TokenLimits) -> Result<Tokens> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Startup(format!("{}: {err}", path.display())))?;
        let file: TokenFile = toml::from_str(&text)
            .map_err(|err| Error::Startup(format!("{}: {err}", path.display())))?;
        let mut by_hash = Vec::with_capacity(file.tokens.len());
        for entry in file.tokens {
            let hash = blake3::Hash::from_hex(entry.blake3.trim()).map_err(|err| {
                Error::Startup(format!(
                    "{}: token {:?}: blake3 is not a hash ({err})",
                    path.display(),
                    entry.name
                ))
            })?;
            by_hash.push((
                hash,
                Caller {
                    name: entry.name,
                    role: entry.role,
                    knowledge_bases: entry.knowledge_bases,
                    limits: TokenLimits {
                        max_concurrent: entry
                            .max_concurrent
                            .or(defaults.max_concurrent)
                            .filter(|&n| n > 0),
                        requests_per_second: entry
                            .requests_per_second
                            .or(defaults.requests_per_second)
                            .filter(|&rate| rate > 0.0),
                    },
                },
            ));
        }
        Ok(Tokens { by_hash, modified })
    }
}

/// The tokens of the file, kept current.
pub struct TokenStore {
    path: PathBuf,
    /// The limits of a token whose entry sets none.
    defaults: TokenLimits,
    current: RwLock<Arc<Tokens>>,
}

impl TokenStore {
    /// Loads the file (an unreadable one fails the start) and follows it from then on. The
    /// thread stops when the store is dropped.
    pub fn open(path: &Path, defaults: TokenLimits) -> Result<Arc<TokenStore>> {
        let store = Arc::new(TokenStore {
            path: path.to_path_buf(),
            defaults,
            current: RwLock::new(Arc::new(Tokens::load(path, defaults)?)),
        });
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("lumbung-tokens".to_string())
            .spawn(move || follow(weak))
            .map_err(|err| Error::Startup(err.to_string()))?;
        Ok(store)
    }

    /// Reloads the file when it changed; a broken file keeps the previous tokens.
    #[allow(clippy::disallowed_methods, reason = "on the token file's own thread")]
    fn reload_if_changed(&self) {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == self.tokens().modified {
            return;
        }
        match Tokens::load(&self.path, self.defaults) {
            Ok(tokens) => {
                tracing::info!(tokens = tokens.by_hash.len(), path = %self.path.display(), "tokens reloaded");
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
            }
            Err(err) => {
                tracing::error!(error = %err, "token file unreadable; keeping the previous tokens")
            }
        }
    }

    fn tokens(&self) -> Arc<Tokens> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The caller whose token `metadata` carries as `authorization: Bearer <token>`.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Error::Unauthenticated("no authorization: Bearer <token>".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Error::Unauthenticated("authorization is not \"Bearer <token>\"".into())
            })?;
        // blake3::Hash compares in constant time.
        let hash = blake3::hash(token.as_bytes());
        self.tokens()
            .by_hash
            .iter()
            .find(|(known, _)| *known == hash)
            .map(|(_, caller)| caller.clone())
            .ok_or_else(|| Error::Unauthenticated("unknown token".into()))
    }
}

#[allow(clippy::disallowed_methods, reason = "the token file's own thread")]
fn follow(store: Weak<TokenStore>) {
    loop {
        std::thread::sleep(RELOAD_EVERY);
        let Some(store) = store.upgrade() else {
            return;
        };
        store.reload_if_changed();
    }
}

/// A new random token and the lines of the token file that grant it.
#[allow(clippy::disallowed_methods, reason = "a CLI command, no runtime")]
pub fn new_token(
    name: &str,
    role: &str,
    knowledge_bases: &[String],
) -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let token = format!("lmb_{}", blake3::Hash::from_bytes(bytes).to_hex());
    let entry = format!(
        "[[token]]\nname = {name:?}\nrole = {role:?}\nknowledge_bases = {knowledge_bases:?}\nblake3 = \"{}\"\n",
        blake3::hash(token.as_bytes()).to_hex()
    );
    Ok((token, entry))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests set up files and wait")]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names() {
        assert!(matches_pattern("*", "it-helpdesk"));
        assert!(matches_pattern("it-*", "it-helpdesk"));
        assert!(matches_pattern("*-zh", "safety-zh"));
        assert!(matches_pattern("it-helpdesk", "it-helpdesk"));
        assert!(matches_pattern("s*y*zh", "safety-zh"));
        assert!(!matches_pattern("it-helpdesk", "it-helpdesk-2"));
        assert!(!matches_pattern("it-*", "safety-it"));
        assert!(!matches_pattern("*-zh", "safety-zh-old"));
        assert!(!matches_pattern("a*a", "a"));
    }

    #[test]
    fn readers_narrow_a_token_never_widen_it() {
        let caller = Caller {
            name: "helpdesk-bot".into(),
            role: Role::Reader,
            knowledge_bases: vec!["it-*".into()],
            limits: TokenLimits::NONE,
        };
        let it = KbName::new("it-helpdesk").unwrap();
        let safety = KbName::new("safety-zh").unwrap();
        assert!(caller.may_read(&it, &[]));
        assert!(caller.may_read(&it, &["helpdesk-bot".into()]));
        assert!(!caller.may_read(&it, &["safety-bot".into()]));
        assert!(
            !caller.may_read(&safety, &["helpdesk-bot".into()]),
            "a folder cannot grant itself"
        );
        assert!(caller.require_admin().is_err());
        assert!(Caller::local_admin().may_read(&safety, &["safety-bot".into()]));
        let admin = Caller {
            name: "ops".into(),
            role: Role::Admin,
            knowledge_bases: vec!["it-*".into()],
            limits: TokenLimits::NONE,
        };
        assert!(admin.may_read(&it, &["helpdesk-bot".into()]));
        assert!(
            !admin.may_read(&safety, &[]),
            "an admin's patterns still bound it"
        );
    }

    #[test]
    fn the_example_token_file_reads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/tokens.toml");
        let defaults = TokenLimits {
            max_concurrent: Some(4),
            requests_per_second: None,
        };
        let tokens = Tokens::load(&example, defaults).unwrap();
        let limits: Vec<(&str, TokenLimits)> = tokens
            .by_hash
            .iter()
            .map(|(_, c)| (c.name.as_str(), c.limits))
            .collect();
        let limited = |max_concurrent, requests_per_second| TokenLimits {
            max_concurrent,
            requests_per_second,
        };
        assert_eq!(
            limits,
            [
                ("helpdesk-bot", limited(Some(4), Some(20.0))),
                ("safety-advisor", limited(Some(4), None)),
                ("ops", TokenLimits::NONE),
            ],
            "an entry's limits override the defaults; 0 is no limit"
        );
    }

    #[test]
    fn tokens_are_found_by_hash_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let (token, entry) = new_token("bot", "reader", &["it-*".to_string()]).unwrap();
        std::fs::write(&path, &entry).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token));
        let store = TokenStore::open(&path, TokenLimits::NONE).unwrap();
        let mut metadata = MetadataMap::new();
        assert!(matches!(
            store.authenticate(&metadata),
            Err(Error::Unauthenticated(_))
        ));
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let caller = store.authenticate(&metadata).unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("bot", Role::Reader));

        std::fs::write(&path, "").unwrap();
        // The next check may see the same modification time on a coarse clock.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        store.reload_if_changed();
        assert!(matches!(
            store.authenticate(&metadata),
            Err(Error::Unauthenticated(_))
        ));
    }
}
