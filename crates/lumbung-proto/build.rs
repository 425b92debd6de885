//! Generates the gRPC code from `proto/` with protox, so that no system `protoc` is needed, the
//! serde implementations of the protobuf JSON mapping that the HTTP API speaks (pbjson), and
//! writes the encoded descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["lumbung/v1/knowledge.proto", "lumbung/v1/admin.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", proto_root.join(file).display());
    }
    let descriptors = protox::compile(files, [&proto_root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = descriptors.encode_to_vec();
    std::fs::write(out_dir.join("lumbung_descriptor.bin"), &encoded)?;
    // pbjson's Timestamp serialises as RFC 3339, as the JSON mapping asks; prost's has no serde.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".google.protobuf.Timestamp", "::pbjson_types::Timestamp")
        .compile_fds(descriptors)?;
    // Every field is written, defaults included, so that a JSON client sees one shape.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .emit_fields()
        .build(&[".lumbung.v1"])?;
    Ok(())
}
