//! Test payloads: random files and their SHA-256.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::Result;

static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// Writes `size` pseudo-random bytes to `path` and returns their SHA-256 (hex).
///
/// xorshift is enough: the point is data no layer can compress away or mistake for text.
pub fn random_file(path: &Path, size: u64) -> Result<String> {
    let mut state = SEED.fetch_add(0x2545_f491_4f6c_dd1d, Ordering::Relaxed)
        ^ u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    if state == 0 {
        state = 1;
    }
    let mut out = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    out.flush()?;
    Ok(hex(&hasher.finalize()))
}

/// Creates a sparse file of `size` zero bytes (instant, whatever the size).
pub fn sparse_file(path: &Path, size: u64) -> Result<()> {
    File::create(path)?.set_len(size)?;
    Ok(())
}

/// SHA-256 (hex) of `size` zero bytes, i.e. of a [`sparse_file`].
pub fn zeros_sha256(size: u64) -> String {
    let mut hasher = Sha256::new();
    let buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    hex(&hasher.finalize())
}

/// SHA-256 (hex) of a file's contents.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
