//! Every endpoint codec (PORT/227, EPRT/229, LPRT/228): parse, format, parse gives the same
//! value; and values built from the input survive format then parse. The checks:
//! core/tests/common/codec_checks.rs, shared with `cargo test`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::codec_checks::check_endpoint_roundtrip(data));
