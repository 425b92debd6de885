//! lumbung's vector store on a Qdrant server or cluster, through `qdrant-client`.
//!
//! [`QdrantVectorStore`] is the same `lumbung_index::VectorStore` as the embedded
//! `EdgeVectorStore`, so search and ingest do not know which one answers: `[vector_store] kind`
//! picks it. It lives in a crate of its own because it brings tonic and a network client into
//! the engine side, which `lumbung-index` must not depend on.
//!
//! With the `stand-in` feature, [`stand_in::StandInQdrant`] serves Qdrant's gRPC API over Qdrant's
//! own storage engine (`qdrant-edge`) in the process: the tests' Qdrant, where no Qdrant server
//! binary can be installed. It is not a Qdrant server and does not replace one.

mod directory;
mod error;
mod lexical;
mod remote;
mod store;

#[cfg(feature = "stand-in")]
pub mod stand_in;

pub use directory::{ClusterDirectory, LeaseHolder};
pub use error::{Error, Result};
pub use lexical::QdrantLexicalIndex;
pub use remote::Connection;
pub use store::{DENSE_VECTOR, QdrantVectorStore, SPARSE_VECTOR, collection_name};
