//! Cost of one FTP control line through Envoy and the ftp-tunnel filter (a benchmark, run by
//! hand; see wasm-component/envoy/README.md).

use std::process::Stdio;

use ftp_tunnel_e2e::envoy::{Envoy, Gateway, LISTEN_PORT, binary_or_skip};
use ftp_tunnel_e2e::pyftpd::Pyftpd;
use ftp_tunnel_e2e::{FtpServer, python};

/// A bare Envoy: one listener, `tcp_proxy` straight to the FTP server, no filter.
const PLAIN_ENVOY_YAML: &str = r#"
static_resources:
  listeners:
  - name: plain
    address: {socket_address: {address: 0.0.0.0, port_value: PLAIN_PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: plain
          cluster: ftp
  clusters:
  - name: ftp
    type: STATIC
    load_assignment:
      cluster_name: ftp
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {socket_address: {address: 127.0.0.1, port_value: SERVER_PORT}}
"#;

/// Logs in and times NOOP round trips; prints microseconds per round trip.
const BENCH_PY: &str = r#"
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection((host, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if l[3:4] == b" ":
            return l
reply()
for c in (b"USER user\r\n", b"PASS pass\r\n"):
    s.sendall(c); reply()
for _ in range(200):
    s.sendall(b"NOOP\r\n"); reply()
t = time.perf_counter()
for _ in range(n):
    s.sendall(b"NOOP\r\n")
    assert reply().startswith(b"200")
print((time.perf_counter() - t) / n * 1e6)
"#;

/// Not a check: prints the cost of one control line (command + reply) through the filter,
/// from NOOP round trips of one client (inside the namespace) to the server directly,
/// through a bare Envoy `tcp_proxy`, and through Envoy with the filter.
/// `cargo test --release --test envoy_bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark; run by hand (see wasm-component/envoy/README.md)"]
fn control_line_cost() {
    let Some(envoy) = binary_or_skip("control_line_cost") else {
        return;
    };
    let gw = Gateway::start(&envoy, Pyftpd::start);
    const PLAIN_PORT: u16 = 2200;
    let plain_yaml = PLAIN_ENVOY_YAML
        .replace("PLAIN_PORT", &PLAIN_PORT.to_string())
        .replace("SERVER_PORT", &gw.server.port().to_string());
    let dir = ftp_tunnel_e2e::open_tempdir("ftpt-envoy-plain-").expect("dir");
    let _plain = Envoy::start_with_config(&envoy, &gw.ns, dir, &plain_yaml, &[PLAIN_PORT])
        .expect("bare envoy");
    // The fastest of five interleaved runs of 2000 round trips each: the machine is shared,
    // and interleaving spreads its load changes over all three.
    let once = |host: &str, port: u16| -> f64 {
        let out = gw
            .ns
            .command_in(python(), &["-c", BENCH_PY, host, &port.to_string(), "2000"])
            .stdin(Stdio::null())
            .output()
            .expect("bench client");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bench failed: {out:?}"))
    };
    let ns_ip = gw.ns.ns_ip().to_string();
    let (mut direct, mut plain, mut filtered) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..5 {
        direct = direct.min(once("127.0.0.1", gw.server.port()));
        plain = plain.min(once(&ns_ip, PLAIN_PORT));
        filtered = filtered.min(once(&ns_ip, LISTEN_PORT));
    }
    println!(
        "NOOP round trip: direct {direct:.1} us, bare Envoy tcp_proxy {plain:.1} us, \
         Envoy + ftp-tunnel filter {filtered:.1} us: the filter adds {:.1} us per control \
         line (command + reply)",
        filtered - plain
    );
}
