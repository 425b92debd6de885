//! The public gRPC API of lumbung (`proto/lumbung/v1/`), generated at build time, and the
//! conversions between its messages and the domain types of `lumbung-core`.
//!
//! Only this crate and `lumbung-server` know about protobuf; the engine crates do not.

mod convert;

/// Generated from `proto/lumbung/v1/*.proto`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("lumbung.v1");
    include!(concat!(env!("OUT_DIR"), "/lumbung.v1.serde.rs"));
}

/// The protobuf timestamp the API's messages carry (with the JSON mapping's RFC 3339 form).
pub use pbjson_types::Timestamp;

/// The encoded `FileDescriptorSet` of the API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lumbung_descriptor.bin"));

pub use convert::{timestamp_from_unix_millis, unix_millis_from_timestamp};
