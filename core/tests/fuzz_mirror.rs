//! The fuzz targets' properties (`core/fuzz`), checked on stable Rust in every `cargo test`:
//! on seeds built from the conformance vectors, and on seeded pseudo-random input.
//!
//! With `FTP_TUNNEL_FUZZ_SEEDS=<dir>` set, the seeds are also written to
//! `<dir>/<target>/<name>`: `scripts/fuzz` starts each target's corpus from them.

mod common;

use std::path::PathBuf;

use common::Rng;
use common::codec_checks::{check_chunking, check_endpoint_roundtrip};
use common::session_model::{
    self, CLIENT_RAW, CLIENT_TOKEN, CLIENT_TOKENS, COMMAND_VERDICT, DATA_CONNECTED, DATA_FINISHED,
    FORWARD_OPENED, SERVER_RAW, SERVER_TOKEN, SERVER_TOKENS,
};
use toml::Value;

/// The vectors' texts by table: (id, bytes, is a reply).
fn vector_texts() -> Vec<(String, Vec<u8>, bool)> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ftp-control-vectors.toml");
    let text = std::fs::read_to_string(&path).expect("vectors file");
    let table: toml::Table = toml::from_str(&text).expect("vectors file is valid TOML");
    let mut out = Vec::new();
    for (name, is_reply) in [("reply", true), ("command", false), ("multiline", true)] {
        for v in table[name].as_array().expect("array of tables") {
            let id = v["id"].as_str().expect("id").to_owned();
            let raw = v.get("raw").and_then(Value::as_bool) == Some(true);
            let lines: Vec<&str> = match v.get("lines") {
                Some(lines) => lines
                    .as_array()
                    .expect("lines")
                    .iter()
                    .map(|l| l.as_str().expect("line"))
                    .collect(),
                None => vec![v["text"].as_str().expect("text")],
            };
            let mut bytes = Vec::new();
            for line in lines {
                if raw {
                    bytes.extend(line.chars().map(|c| u32::from(c) as u8));
                } else {
                    bytes.extend_from_slice(line.as_bytes());
                    bytes.extend_from_slice(b"\r\n");
                }
            }
            out.push((id, bytes, is_reply));
        }
    }
    out
}

fn token(tokens: &[&[u8]], line: &[u8]) -> u8 {
    tokens.iter().position(|t| *t == line).expect("a token") as u8
}

/// Pushes `bytes` as raw operations of at most 79 bytes.
fn raw_ops(seed: &mut Vec<u8>, op: u8, bytes: &[u8]) {
    for chunk in bytes.chunks(79) {
        seed.extend([op, chunk.len() as u8]);
        seed.extend_from_slice(chunk);
    }
}

/// Configuration byte bit: command checks on.
const CHECKS: u8 = 0x40;

/// A session seed per vector: the line in its place in a conversation (a reply after
/// PASV, a command from the client), the forward answered, a transfer run through it.
/// With [`CHECKS`] in `config`, the host answers each command's check, allowing all but
/// the vector's own command when `deny` is set.
fn session_seed(bytes: &[u8], is_reply: bool, config: u8, deny: bool) -> Vec<u8> {
    let mut seed = vec![config];
    // The newest check, allowed (verdict byte 0) or denied (1).
    let verdict = |seed: &mut Vec<u8>, deny: bool| {
        if config & CHECKS != 0 {
            seed.extend([COMMAND_VERDICT, 0, u8::from(deny)]);
        }
    };
    if is_reply {
        seed.extend([CLIENT_TOKEN, token(CLIENT_TOKENS, b"PASV\r\n"), 0]);
        verdict(&mut seed, false);
        raw_ops(&mut seed, SERVER_RAW, bytes);
    } else {
        raw_ops(&mut seed, CLIENT_RAW, bytes);
        verdict(&mut seed, deny);
        seed.extend([
            SERVER_TOKEN,
            token(SERVER_TOKENS, b"200 Command okay\r\n"),
            3,
        ]);
    }
    seed.extend([FORWARD_OPENED, 0, 8]);
    seed.extend([CLIENT_TOKEN, token(CLIENT_TOKENS, b"LIST\r\n"), 2]);
    verdict(&mut seed, false);
    seed.extend([
        SERVER_TOKEN,
        token(SERVER_TOKENS, b"150 Here comes the data\r\n"),
        0,
    ]);
    seed.extend([SERVER_TOKEN, token(SERVER_TOKENS, b"226 Done\r\n"), 0]);
    seed.extend([DATA_CONNECTED, 0, DATA_FINISHED, 0]);
    seed
}

/// Seeds for every target: (target, name, input).
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let vectors = vector_texts();
    for (id, bytes, is_reply) in &vectors {
        // Client at 127.0.0.1 with the default rules, and at ::1 with both opt-outs.
        // With command checks too: each allowed, or the vector's command denied.
        out.push((
            "session",
            id.clone(),
            session_seed(bytes, *is_reply, 0, false),
        ));
        out.push((
            "session",
            format!("{id}-v6"),
            session_seed(bytes, *is_reply, 0x1d, false),
        ));
        out.push((
            "session",
            format!("{id}-checked"),
            session_seed(bytes, *is_reply, CHECKS, false),
        ));
        if !is_reply {
            out.push((
                "session",
                format!("{id}-denied"),
                session_seed(bytes, *is_reply, CHECKS, true),
            ));
        }
        let line = bytes.strip_suffix(b"\r\n").unwrap_or(bytes);
        out.push(("endpoint", id.clone(), line.to_vec()));
        if let Some(space) = line.iter().position(|&b| b == b' ') {
            out.push(("endpoint", format!("{id}-arg"), line[space + 1..].to_vec()));
        }
        out.push((
            "framing",
            id.clone(),
            [&[16, id.len() as u8][..], bytes].concat(),
        ));
    }
    // All vectors as one stream, with bare LFs, at a few caps.
    let mut stream: Vec<u8> = vectors.iter().flat_map(|(_, b, _)| b.clone()).collect();
    stream.extend_from_slice(b"220-a\n220 b\n\n\r\n");
    for cap in [6u8, 30, 90] {
        out.push((
            "framing",
            format!("all-{cap}"),
            [&[cap, 7][..], &stream].concat(),
        ));
    }
    out
}

#[test]
fn seeds_from_the_conformance_vectors_keep_every_property() {
    let seeds = seeds();
    let dir = std::env::var_os("FTP_TUNNEL_FUZZ_SEEDS").map(PathBuf::from);
    for (target, name, input) in &seeds {
        match *target {
            "session" => session_model::run(input),
            "endpoint" => check_endpoint_roundtrip(input),
            _ => check_chunking(input),
        }
        if let Some(dir) = &dir {
            let dir = dir.join(target);
            std::fs::create_dir_all(&dir).expect("seed directory");
            std::fs::write(dir.join(name), input).expect("seed file");
        }
    }
    assert!(seeds.len() > 100, "only {} seeds", seeds.len());
}

#[test]
fn random_hosts_and_peers_keep_the_session_properties() {
    let mut rng = Rng(0x5EED_F00D_0BAD_CAFE);
    for _ in 0..3_000 {
        session_model::run(&session_model::random_input(&mut rng, 60));
    }
}

#[test]
fn mutated_endpoints_round_trip() {
    let texts: Vec<Vec<u8>> = vector_texts().into_iter().map(|(_, b, _)| b).collect();
    let mut rng = Rng(0x0E4D_9017);
    for _ in 0..20_000 {
        let mut text = texts[rng.below(texts.len())].clone();
        text.truncate(text.len().saturating_sub(2));
        if let Some(space) = text.iter().position(|&b| b == b' ')
            && rng.below(2) == 0
        {
            text.drain(..=space);
        }
        for _ in 0..rng.below(3) {
            let pos = rng.below(text.len() + 1);
            text.insert(pos, b"0123456789,|:.f()"[rng.below(17)]);
        }
        check_endpoint_roundtrip(&text);
    }
}

#[test]
fn random_streams_frame_the_same_in_any_chunking() {
    let mut rng = Rng(0x000F_2A3E);
    for _ in 0..500 {
        let len = rng.below(600);
        const ALPHABET: &[u8] = b"ab\r\n\n\0\xff 2";
        let input: Vec<u8> = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        check_chunking(&input);
    }
}
