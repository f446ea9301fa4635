//! A session fed arbitrary bytes in both directions, split anywhere, and a host that
//! answers late, out of order, twice, or for ids never asked. The input format and the
//! properties checked: core/tests/common/session_model.rs, shared with `cargo test`.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| common::session_model::run(data));
