//! Generates Rust from the `.proto` files in the repository's `proto/` directory.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so a fresh machine needs no
//! system protobuf compiler.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [root.join("ledgerline/stripe/v1/records.proto")];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.compile_protos(&files, std::slice::from_ref(&root))?;

    // The ledger's entries and its gRPC query service (client and server), plus the encoded
    // descriptor set that gRPC reflection serves.
    let ledger = [
        root.join("ledgerline/ledger/v1/entries.proto"),
        root.join("ledgerline/ledger/v1/query.proto"),
    ];
    for file in &ledger {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // No `connect` helper on clients: it needs tonic's transport feature, which users of the
    // topic envelopes alone should not have to build.
    tonic_prost_build::configure()
        .build_transport(false)
        .file_descriptor_set_path(out.join("ledgerline.ledger.v1.bin"))
        .compile_with_config(config, &ledger, &[root])?;
    Ok(())
}
