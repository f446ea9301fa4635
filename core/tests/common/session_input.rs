//! The input vocabulary of the session model ([`super::session_model`]): opcodes, the lines
//! worth combining, the configurations, and a generator of random inputs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ftp_tunnel_core::session::SessionConfig;

/// Opcodes, see the module documentation.
pub const CLIENT_RAW: u8 = 0;
/// Bytes from the server.
pub const SERVER_RAW: u8 = 1;
/// A line from [`CLIENT_TOKENS`].
pub const CLIENT_TOKEN: u8 = 2;
/// A line from [`SERVER_TOKENS`].
pub const SERVER_TOKEN: u8 = 3;
/// The host answers a forward request.
pub const FORWARD_OPENED: u8 = 4;
/// The host reports a data connection up.
pub const DATA_CONNECTED: u8 = 5;
/// The host reports a data connection over.
pub const DATA_FINISHED: u8 = 6;
/// The host answers everything still open.
pub const CATCH_UP: u8 = 7;
/// The host answers a command check.
pub const COMMAND_VERDICT: u8 = 8;
/// How many opcodes there are.
pub const OPCODES: u8 = 9;

/// Client lines worth combining: data commands for the configured peers and foreign ones,
/// transfers, and commands with their own rules.
pub const CLIENT_TOKENS: &[&[u8]] = &[
    b"PASV\r\n",
    b"EPSV\r\n",
    b"LPSV\r\n",
    b"EPSV ALL\r\n",
    b"PORT 127,0,0,1,4,1\r\n",
    b"PORT 192,0,2,7,200,10\r\n",
    b"PORT 10,0,0,9,0,21\r\n",
    b"EPRT |1|127.0.0.1|5000|\r\n",
    b"EPRT |2|::1|5001|\r\n",
    b"EPRT |2|::|5002|\r\n",
    b"EPRT |2|::ffff:127.0.0.1|5003|\r\n",
    b"EPRT |1|203.0.113.5|25|\r\n",
    b"LPRT 4,4,127,0,0,1,2,0,40\r\n",
    b"LPRT 6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,19,136\r\n",
    b"LIST\r\n",
    b"RETR f\r\n",
    b"STOR f\n",
    b"\xff\xf4\xff\xf2ABOR\r\n",
    b"FEAT\r\n",
    b"AUTH TLS\r\n",
    b"NOOP\r\n",
    b"PORT 127,0,0,1,4,1\0x\r\n",
];

/// Server lines worth combining: greetings, passive replies of every shape, transfer
/// replies, multi-line replies.
pub const SERVER_TOKENS: &[&[u8]] = &[
    b"220 ready\r\n",
    b"120 wait\r\n",
    b"227 Entering Passive Mode (10,0,0,5,4,1).\r\n",
    b"227 =0,0,0,0,4,2\r\n",
    b"229 Entering Extended Passive Mode (|||3583|)\r\n",
    b"229 (|1|10.0.0.1|5000|)\n",
    b"228 Entering Long Passive Mode (4,4,10,0,0,5,2,4,1)\r\n",
    b"227 Entering Passive Mode (127,0,0,1,256,0)\r\n",
    b"150 Here comes the data\r\n",
    b"125 Go ahead\r\n",
    b"226 Done\r\n",
    b"250 OK\r\n",
    b"200 Command okay\r\n",
    b"425 No data connection\r\n",
    b"500 What\r\n",
    b"211-Features:\r\n",
    b" AUTH TLS\r\n",
    b" EPSV\r\n",
    b"211 End\r\n",
    b"227-Some servers explain first\r\n",
    b"421 Bye\r\n",
];

/// Why a forward failed or a command was denied, as hosts might say it (with bytes no
/// generated line may carry).
pub const REASONS: &[&str] = &[
    "administratively prohibited",
    "refused\r\n200 injected",
    "nul\0byte",
    "",
];

/// The FTP server's host in every configuration.
pub const SERVER_HOST: &str = "ftp.internal";

/// The configuration byte 0 selects: the client's address, the two opt-outs, the line cap,
/// command checks (bit 6).
pub fn config_for(byte: u8) -> SessionConfig {
    let peers = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
    ];
    let mut config = SessionConfig::new(peers[usize::from(byte & 3)], SERVER_HOST);
    config.trust_passive_address = byte & 4 != 0;
    config.allow_foreign_data_address = byte & 8 != 0;
    config.max_line = [512, 513, 1024, 8192][usize::from((byte >> 4) & 3)];
    config.check_commands = byte & 0x40 != 0;
    config
}

/// A random input in the format above, biased towards meaningful lines and answers.
pub fn random_input(rng: &mut super::Rng, ops: usize) -> Vec<u8> {
    let mut input = vec![rng.next() as u8];
    for _ in 0..ops {
        let op = rng.below(usize::from(OPCODES)) as u8;
        input.push(op);
        match op {
            CLIENT_RAW | SERVER_RAW => {
                let n = rng.below(24);
                input.push(n as u8);
                const ALPHABET: &[u8] = b"PASVEPRTLIST 0123456789,|()\r\n\r\n\0\xff";
                input.extend((0..n).map(|_| ALPHABET[rng.below(ALPHABET.len())]));
            }
            _ => {
                input.push(rng.next() as u8);
                input.push(rng.next() as u8);
            }
        }
    }
    input
}
