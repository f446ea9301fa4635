//! The line framer: any chunking of a stream gives the same lines, within the framer's
//! documented memory bound. The checks: core/tests/common/codec_checks.rs, shared with
//! `cargo test`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::codec_checks::check_chunking(data));
