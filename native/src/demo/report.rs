//! Renders the demo's results as a short plain-text report.

use std::fmt::Write as _;
use std::time::Duration;

use super::ftp_client::{FtpMode, Transfer};

/// Transfers smaller than this show no speed: their time is all round trips.
const MIN_BYTES_FOR_SPEED: u64 = 256 * 1024;

/// A control line the tunnel replaced or answered, as reported by its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteLine {
    /// "rewrite", "refused", "malformed" or "forward-failed".
    pub kind: String,
    /// The line as received.
    pub original: String,
    /// What went out instead.
    pub rewritten: String,
}

/// A data connection as the tunnel measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelTransfer {
    /// Active (remote forward) or passive (direct-tcpip).
    pub active: bool,
    /// Bytes FTP client → FTP server.
    pub to_server: u64,
    /// Bytes FTP server → FTP client.
    pub to_client: u64,
    /// Lifetime of the data connection.
    pub elapsed: Duration,
}

/// Everything known about one mode's run.
#[derive(Debug, Clone, Default)]
pub struct ModeReport {
    /// The mode (None only in `Default`).
    pub mode: Option<FtpMode>,
    /// The client's measurements, in order.
    pub transfers: Vec<Transfer>,
    /// The tunnel's data connections for this session, in the order they finished.
    pub tunnel_transfers: Vec<TunnelTransfer>,
    /// The tunnel's rewrites for this session, in order.
    pub rewrites: Vec<RewriteLine>,
    /// Why the mode failed, if it did.
    pub error: Option<String>,
}

impl ModeReport {
    /// True if the mode passed: transfers ran and no error was recorded (the caller records
    /// one when the tunnel did not see every data connection).
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.transfers.is_empty()
    }
}

/// Formats a byte count with a binary unit.
pub fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f >= KIB * KIB * KIB {
        format!("{:.2} GiB", f / (KIB * KIB * KIB))
    } else if f >= KIB * KIB {
        format!("{:.2} MiB", f / (KIB * KIB))
    } else if f >= KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{n} B")
    }
}

/// Formats a duration in ms (or s above 10 s).
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Throughput in MiB/s, or "-" for transfers too small to mean anything.
pub fn speed(n: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if n < MIN_BYTES_FOR_SPEED || secs <= 0.0 {
        return "-".to_owned();
    }
    format!("{:.0} MiB/s", n as f64 / (1024.0 * 1024.0) / secs)
}

/// Shortens a line for display, keeping it on one row.
fn clip(s: &str, max: usize) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn tunnel_cell(t: Option<&TunnelTransfer>) -> String {
    match t {
        None => "(no data channel event)".to_owned(),
        Some(t) => {
            let how = if t.active {
                "active: forwarded-tcpip"
            } else {
                "passive: direct-tcpip"
            };
            format!(
                "{how}, {} up, {} down",
                bytes(t.to_server),
                bytes(t.to_client)
            )
        }
    }
}

/// Renders the rewrites section: per mode, each distinct kind of rewritten line once
/// (first example shown, with a count), and every refusal or failure in full.
pub fn render_rewrites(modes: &[ModeReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Control lines the tunnel rewrote (from its events):");
    for m in modes {
        let Some(mode) = m.mode else { continue };
        if m.rewrites.is_empty() {
            let _ = writeln!(out, "  {mode:<5} (none seen)");
            continue;
        }
        // Group ordinary rewrites by the verb or reply code they start with.
        let mut groups: Vec<(String, &RewriteLine, usize)> = Vec::new();
        for r in &m.rewrites {
            if r.kind != "rewrite" {
                let _ = writeln!(
                    out,
                    "  {mode:<5} {}: {}  →  {}",
                    r.kind,
                    clip(&r.original, 60),
                    clip(&r.rewritten, 60)
                );
                continue;
            }
            let key: String = r
                .original
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match groups.iter_mut().find(|(k, _, _)| *k == key) {
                Some(g) => g.2 += 1,
                None => groups.push((key, r, 1)),
            }
        }
        for (_, r, count) in groups {
            let times = if count > 1 {
                format!("   (×{count})")
            } else {
                String::new()
            };
            let _ = writeln!(out, "  {mode:<5} {}{times}", clip(&r.original, 64));
            let _ = writeln!(out, "        → {}", clip(&r.rewritten, 64));
        }
    }
    out
}

/// Renders the transfers table.
pub fn render_transfers(modes: &[ModeReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Transfers (client-measured time; the tunnel's view of each data channel):"
    );
    let _ = writeln!(
        out,
        "  {:<5} {:<9} {:>10} {:>9} {:>10}   TUNNEL DATA CHANNEL",
        "MODE", "STEP", "BYTES", "TIME", "SPEED"
    );
    for m in modes {
        let Some(mode) = m.mode else { continue };
        for (i, t) in m.transfers.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {:<5} {:<9} {:>10} {:>9} {:>10}   {}",
                mode.verb(),
                t.step,
                bytes(t.bytes),
                duration(t.elapsed),
                speed(t.bytes, t.elapsed),
                tunnel_cell(m.tunnel_transfers.get(i)),
            );
        }
        if let Some(e) = &m.error {
            let _ = writeln!(out, "  {:<5} FAILED: {}", mode.verb(), clip(e, 200));
        }
    }
    out
}

/// The final one-line verdict, e.g. `Result: EPSV OK, PASV OK, EPRT OK, PORT OK`.
pub fn render_verdict(modes: &[ModeReport]) -> String {
    let parts: Vec<String> = modes
        .iter()
        .filter_map(|m| {
            m.mode
                .map(|mode| format!("{mode} {}", if m.ok() { "OK" } else { "FAILED" }))
        })
        .collect();
    format!("Result: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::ftp_client::Step;

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4 * 1024 * 1024), "4.00 MiB");
        assert_eq!(bytes(u64::MAX), "17179869184.00 GiB");
        assert_eq!(duration(Duration::from_millis(1500)), "1500 ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1.5 ms");
        assert_eq!(speed(100, Duration::from_millis(1)), "-");
        assert_eq!(speed(64 << 20, Duration::from_secs(2)), "32 MiB/s");
        assert_eq!(speed(64 << 20, Duration::ZERO), "-");
    }

    fn transfer(step: Step, n: u64) -> Transfer {
        Transfer {
            step,
            file: "f".into(),
            bytes: n,
            elapsed: Duration::from_millis(10),
        }
    }

    #[test]
    fn renders_groups_and_verdict() {
        let rw = |o: &str, n: &str| RewriteLine {
            kind: "rewrite".into(),
            original: o.into(),
            rewritten: n.into(),
        };
        let ok = ModeReport {
            mode: Some(FtpMode::Port),
            transfers: vec![transfer(Step::Upload, 5 << 20)],
            tunnel_transfers: vec![TunnelTransfer {
                active: true,
                to_server: 5 << 20,
                to_client: 0,
                elapsed: Duration::from_millis(9),
            }],
            rewrites: vec![
                rw("PORT 127,0,0,1,4,1", "PORT 127,0,0,1,9,9"),
                rw("PORT 127,0,0,1,4,2", "PORT 127,0,0,1,9,8"),
                RewriteLine {
                    kind: "refused".into(),
                    original: "AUTH TLS\r\n".into(),
                    rewritten: "534 no".into(),
                },
            ],
            error: None,
        };
        let bad = ModeReport {
            mode: Some(FtpMode::Eprt),
            error: Some("STOR: timed out".into()),
            ..Default::default()
        };
        let modes = [ok, bad];
        let r = render_rewrites(&modes);
        assert!(r.contains("PORT 127,0,0,1,4,1   (×2)"), "{r}");
        assert!(r.contains("refused: AUTH TLS  →  534 no"), "{r}");
        assert!(r.contains("EPRT  (none seen)"), "{r}");
        let t = render_transfers(&modes);
        assert!(
            t.contains("active: forwarded-tcpip, 5.00 MiB up, 0 B down"),
            "{t}"
        );
        assert!(t.contains("EPRT  FAILED: STOR: timed out"), "{t}");
        assert_eq!(render_verdict(&modes), "Result: PORT OK, EPRT FAILED");
    }
}
