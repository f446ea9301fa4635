//! A minimal blocking FTP control client, for tests that need exact control over each
//! command and each socket (bad input, timing, a data socket left unread).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::{Error, Result};

/// One FTP reply: its code and all its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The reply's lines, joined with `\n`.
    pub text: String,
}

impl Reply {
    /// 1xx..5xx class (the first digit).
    pub fn class(&self) -> u16 {
        self.code / 100
    }
}

/// An FTP control connection.
#[derive(Debug)]
pub struct RawFtp {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl RawFtp {
    /// Connects, reads the greeting and returns it; every later read times out after `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<(Self, Reply)> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        let peer = s.peer_addr()?;
        let mut ftp = RawFtp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            peer,
        };
        let greeting = ftp.read_reply()?;
        Ok((ftp, greeting))
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> Result<Reply> {
        let mut lines = Vec::new();
        let first = self.read_line()?;
        let code =
            parse_code(&first).ok_or_else(|| Error::Ftp(format!("not a reply: {first:?}")))?;
        let multi = first.as_bytes().get(3) == Some(&b'-');
        lines.push(first);
        if multi {
            let end = format!("{code} ");
            loop {
                let l = self.read_line()?;
                let done = l.starts_with(&end) || l == code.to_string();
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Ok(Reply {
            code,
            text: lines.join("\n"),
        })
    }

    fn read_line(&mut self) -> Result<String> {
        let mut buf = Vec::new();
        let n = self.reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(Error::Ftp("control connection closed".into()));
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Sends one command line (CRLF added) without reading the reply.
    pub fn send(&mut self, line: &str) -> Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        Ok(())
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Result<Reply> {
        self.send(line)?;
        self.read_reply()
    }

    /// USER/PASS; fails unless the login is accepted.
    pub fn login(&mut self, user: &str, pass: &str) -> Result<()> {
        let mut r = self.cmd(&format!("USER {user}"))?;
        if r.code == 331 {
            r = self.cmd(&format!("PASS {pass}"))?;
        }
        if r.class() != 2 {
            return Err(Error::Ftp(format!("login refused: {}", r.text)));
        }
        Ok(())
    }

    /// Sends PASV and returns the address the (rewritten) 227 names.
    pub fn pasv(&mut self) -> Result<SocketAddr> {
        let r = self.cmd("PASV")?;
        if r.code != 227 {
            return Err(Error::Ftp(format!("PASV refused: {}", r.text)));
        }
        parse_227(&r.text).ok_or_else(|| Error::Ftp(format!("bad 227: {}", r.text)))
    }

    /// EPSV, the data connection, then `RETR path`, checked for a `1xx`: the download is
    /// under way on the returned connection (its reads time out after `timeout`).
    pub fn start_retr(&mut self, path: &str, timeout: Duration) -> Result<TcpStream> {
        let data_addr = self.epsv()?;
        let data = TcpStream::connect_timeout(&data_addr, timeout)?;
        data.set_read_timeout(Some(timeout))?;
        let reply = self.cmd(&format!("RETR {path}"))?;
        if reply.class() != 1 {
            return Err(Error::Ftp(format!("RETR refused: {}", reply.text)));
        }
        Ok(data)
    }

    /// Sends EPSV and returns the control peer's address with the 229's port.
    pub fn epsv(&mut self) -> Result<SocketAddr> {
        let r = self.cmd("EPSV")?;
        if r.code != 229 {
            return Err(Error::Ftp(format!("EPSV refused: {}", r.text)));
        }
        let port = parse_229(&r.text).ok_or_else(|| Error::Ftp(format!("bad 229: {}", r.text)))?;
        Ok(SocketAddr::new(self.peer.ip(), port))
    }
}

fn parse_code(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 3 && b[3] != b' ' && b[3] != b'-' {
        return None;
    }
    line[..3].parse().ok()
}

/// Parses `227 ... (h1,h2,h3,h4,p1,p2)`.
pub fn parse_227(text: &str) -> Option<SocketAddr> {
    let inner = text.get(4..)?;
    let nums: Vec<u16> = inner
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    if nums.len() < 6 {
        return None;
    }
    let n = &nums[nums.len() - 6..];
    if n.iter().any(|&v| v > 255) {
        return None;
    }
    let ip = IpAddr::from([n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8]);
    Some(SocketAddr::new(ip, n[4] * 256 + n[5]))
}

/// Parses `229 ... (|||port|)`.
pub fn parse_229(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let close = text[open..].find(')')? + open;
    let inner = &text[open + 1..close];
    let delim = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(delim).collect();
    if parts.len() != 5 {
        return None;
    }
    parts[3].parse().ok().filter(|&p| p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        assert_eq!(
            parse_227("227 Entering Passive Mode (127,0,0,1,156,64)."),
            Some("127.0.0.1:40000".parse().unwrap())
        );
        assert_eq!(
            parse_227("227 Entering Passive Mode (127,0,0,1,256,0)"),
            None
        );
        assert_eq!(
            parse_229("229 Entering Extended Passive Mode (|||40001|)"),
            Some(40001)
        );
        assert_eq!(parse_229("229 nonsense"), None);
        assert_eq!(parse_code("200 ok"), Some(200));
        assert_eq!(parse_code("20x"), None);
    }
}
