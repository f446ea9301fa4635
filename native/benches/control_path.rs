//! Control-path cost: one FTP control line through the native rewrite core versus through the
//! wasm component (one instance per session), and the cost of making a session ready.
//!
//! Run with `cargo bench -p ftp-tunnel --bench control_path`; `scripts/bench` runs it and reads
//! the medians from `target/criterion/*/new/estimates.json`.
//!
//! Each benchmark's iteration is a command/reply *pair* (two lines), because a lone command
//! or a lone reply would leave the session's reply tracking unbalanced and the measured state
//! would drift; the per-line figure is half the pair.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ftp_tunnel::runtime::wit::{self, Action as WitAction, ForwardError};
use ftp_tunnel::runtime::{Runtime, SessionInstance};
use ftp_tunnel::settings::FtpSettings;
use ftp_tunnel_core::session::{Action, Session, SessionConfig as CoreConfig};
use tokio::runtime::Runtime as Tokio;

const NOOP: &[u8] = b"NOOP\r\n";
const NOOP_REPLY: &[u8] = b"200 NOOP ok.\r\n";
const PASV: &[u8] = b"PASV\r\n";
const PASV_REPLY: &[u8] = b"227 Entering Passive Mode (127,0,0,1,156,64).\r\n";
const GREETING: &[u8] = b"220 (vsFTPd 3.0.3)\r\n";

fn core_session() -> Session {
    let mut session = Session::new(CoreConfig::new(
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        "127.0.0.1",
    ));
    session.handle_server_bytes(GREETING);
    session.drain_actions().for_each(drop);
    session
}

fn component_config() -> wit::SessionConfig {
    FtpSettings::default().session_config("127.0.0.1:50000".parse().expect("literal"), "127.0.0.1")
}

/// Bytes the actions write to either control connection.
fn written(actions: &[WitAction]) -> usize {
    actions
        .iter()
        .map(|a| match a {
            WitAction::ToServer(bytes) | WitAction::ToClient(bytes) => bytes.len(),
            _ => 0,
        })
        .sum()
}

/// The id of the data path the actions ask for, if any.
fn opened(actions: &[WitAction]) -> Option<u32> {
    actions.iter().find_map(|a| match a {
        WitAction::OpenDataPath((id, _)) => Some(*id),
        _ => None,
    })
}

/// Feeds a PASV and its 227 and answers the forward the core asks for, as the host would.
fn core_pasv_round(session: &mut Session, listen: SocketAddr) -> usize {
    session.handle_client_bytes(black_box(PASV));
    let mut out = 0;
    for action in session.drain_actions() {
        if let Action::ToServer(bytes) = action {
            out += bytes.len();
        }
    }
    session.handle_server_bytes(black_box(PASV_REPLY));
    let mut opened = None;
    for action in session.drain_actions() {
        if let Action::OpenForward { id, .. } = action {
            opened = Some(id);
        }
    }
    if let Some(id) = opened {
        session.handle_forward_opened(id, Ok(listen));
    }
    for action in session.drain_actions() {
        if let Action::ToClient(bytes) = action {
            out += bytes.len();
        }
    }
    out
}

fn core_noop_round(session: &mut Session) -> usize {
    session.handle_client_bytes(black_box(NOOP));
    session.handle_server_bytes(black_box(NOOP_REPLY));
    session.drain_actions().count()
}

fn bench_native(c: &mut Criterion) {
    let mut group = c.benchmark_group("native");
    let listen: SocketAddr = "127.0.0.1:50123".parse().expect("literal address");

    let mut session = core_session();
    // The rewrite must really happen, or the bench measures a fast path by mistake.
    assert!(core_pasv_round(&mut session, listen) > PASV.len());
    group.bench_function("pasv_227_pair", |b| {
        b.iter(|| core_pasv_round(&mut session, listen))
    });

    let mut session = core_session();
    group.bench_function("noop_200_pair", |b| {
        b.iter(|| core_noop_round(&mut session))
    });

    group.bench_function("session_setup", |b| {
        b.iter(|| {
            let mut session = core_session();
            core_noop_round(&mut session)
        })
    });
    group.finish();
}

/// Runs `iters` rounds inside one `block_on` (a `block_on` per iteration would add the
/// runtime's entry cost to every sample) and returns the time of the whole loop.
fn time_loop<F>(tokio: &Tokio, iters: u64, mut round: F) -> Duration
where
    F: AsyncFnMut() -> usize,
{
    tokio.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(round().await);
        }
        start.elapsed()
    })
}

async fn component_noop_round(instance: &mut SessionInstance) -> usize {
    let a = instance.from_client(black_box(NOOP)).await;
    let b = instance.from_server(black_box(NOOP_REPLY)).await;
    match (a, b) {
        (Ok(a), Ok(b)) => written(&a) + written(&b),
        _ => 0,
    }
}

/// PASV, its 227, and the host's answer: here a refusal (no SSH behind the bench), so the
/// component writes a 425 instead.
async fn component_pasv_round(instance: &mut SessionInstance) -> usize {
    let a = instance.from_client(black_box(PASV)).await;
    let b = instance.from_server(black_box(PASV_REPLY)).await;
    let (Ok(a), Ok(b)) = (a, b) else { return 0 };
    let Some(id) = opened(&b) else { return 0 };
    let refused = ForwardError::Failed("no SSH connection in this benchmark".to_owned());
    match instance.forward_opened(id, Err(refused)).await {
        Ok(c) => written(&a) + written(&c),
        Err(_) => 0,
    }
}

fn bench_component(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let runtime = Runtime::new().expect("the embedded component loads");
    let config = component_config();
    let mut group = c.benchmark_group("component");

    let start = |tokio: &Tokio| {
        tokio.block_on(async {
            let mut instance = runtime
                .start_session(&config)
                .await
                .expect("session starts");
            instance.from_server(GREETING).await.expect("greeting");
            instance
        })
    };

    let mut instance = start(&tokio);
    assert!(tokio.block_on(component_noop_round(&mut instance)) == NOOP.len() + NOOP_REPLY.len());
    group.bench_function("noop_200_pair", |b| {
        b.iter_custom(|iters| {
            time_loop(&tokio, iters, async || {
                component_noop_round(&mut instance).await
            })
        })
    });
    tokio.block_on(instance.close());

    // Without SSH the data path is refused: the 227 is parsed, a data path asked for across
    // the WIT boundary, answered as failed, and a 425 written instead.
    let mut instance = start(&tokio);
    assert!(tokio.block_on(component_pasv_round(&mut instance)) > PASV.len());
    group.bench_function("pasv_227_refused_pair", |b| {
        b.iter_custom(|iters| {
            time_loop(&tokio, iters, async || {
                component_pasv_round(&mut instance).await
            })
        })
    });
    tokio.block_on(instance.close());

    // Session ready: Store + instance from the InstancePre + constructor + the first call.
    // Closing the session is outside the timed part.
    group.bench_function("session_setup", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let mut instance = runtime
                        .start_session(&config)
                        .await
                        .expect("session starts");
                    let first = instance.from_server(GREETING).await;
                    total += t.elapsed();
                    black_box(first.is_ok());
                    instance.close().await;
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_native, bench_component
}
criterion_main!(benches);
