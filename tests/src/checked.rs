//! One upload, listing and download through a tunnel, checked the way every transfer suite
//! checks it: the listing names the file, SHA-256 matches on both ends, and the bytes were
//! seen crossing SSH in the tunnel's transfer lines, each in the mode asked for.

use std::path::Path;
use std::time::Duration;

use crate::FtpServer;
use crate::clients::{Client, Mode, Target, round_trip};
use crate::files::{random_file, sha256_file};
use crate::poll_until;
use crate::tunnel::Tunnel;

/// How long the tunnel's transfer lines may lag behind the client.
const WAIT: Duration = Duration::from_secs(15);

/// Uploads `size` random bytes as `up-<client>-<VERB>.bin` to `server` through `tunnel`
/// (reached at `target`), lists, downloads, and panics unless every check holds. Local
/// files go to `scratch`.
pub fn checked_round_trip(
    tunnel: &Tunnel,
    server: &dyn FtpServer,
    target: &Target,
    client: Client,
    mode: Mode,
    scratch: &Path,
    size: u64,
) {
    let src = scratch.join("src.bin");
    let out = scratch.join("out.bin");
    let sum = random_file(&src, size).expect("random file");
    let name = format!("up-{client}-{}.bin", mode.verb());
    let rt = round_trip(client, mode, target, &src, &name, &out).expect("round trip");

    assert!(
        rt.listing.contains(&name),
        "listing lacks {name}:\n{}",
        rt.listing
    );
    assert_eq!(
        sha256_file(&server.upload_dir_local().join(&name)).expect("hash"),
        sum,
        "upload corrupted"
    );
    assert_eq!(sha256_file(&out).expect("hash"), sum, "download corrupted");

    tunnel
        .wait_transfer(WAIT, |t| t.to_server == size)
        .expect("the upload's bytes crossed SSH");
    tunnel
        .wait_transfer(WAIT, |t| t.to_client == size)
        .expect("the download's bytes crossed SSH");
    let lines = poll_until(WAIT, || {
        let l = tunnel.transfer_lines();
        Ok((l.len() >= 3).then_some(l))
    })
    .expect("three transfers (STOR, LIST, RETR) logged");
    for l in &lines {
        assert_eq!(l.mode, mode.kind(), "wrong mode in {l:?}");
    }
}
