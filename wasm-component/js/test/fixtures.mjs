// Real peers for the gateway tests: pyftpdlib and vsftpd on free loopback ports, the example
// gateway, and the clients (curl, Python ftplib). Every process is started in its own
// process group and killed by that group's id (vsftpd forks a child per session).

import { spawn, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GATEWAY = path.join(here, '..', 'example', 'ftp-gateway.mjs');
export const PYTHON = process.env.FTP_TUNNEL_PYTHON || 'python3';
const FTPLIB_CLIENT = path.join(here, 'ftplib_client.py');

const started = new Set();
process.on('exit', () => { for (const p of started) killGroup(p); });

function killGroup(child) {
  try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
  started.delete(child);
}

/** Resolves when `check()` returns a truthy value; rejects after `ms` with `what`. */
export async function poll(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** `promise`, or a rejection naming `what` if it has not settled within `ms`. */
export function within(what, promise, ms = 15_000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A fresh temporary directory (left for inspection; the system cleans its temp dir). */
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ftpt-js-${prefix}-`));
}

/** A port nothing listens on right now (for vsftpd, which cannot report the one it took). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

/** Starts a process in its own group; output goes to `log`. */
function start(command, args, log) {
  const out = fs.openSync(log, 'w');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  started.add(child);
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    log,
    output: () => fs.readFileSync(log, 'utf8'),
    stop: async () => { killGroup(child); await child.exited; },
  };
}

const PYFTPD = `
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
home = sys.argv[1]
auth = DummyAuthorizer()
auth.add_user("user", "pass", home, perm="elradfmwMT")
FTPHandler.authorizer = auth
server = FTPServer(("127.0.0.1", 0), FTPHandler)
print("port", server.socket.getsockname()[1], flush=True)
server.serve_forever(handle_exit=True)
`;

/** pyftpdlib on 127.0.0.1 (a port it picks), user `user`/`pass`, uploads in the root. */
export async function startPyftpd() {
  const dir = tempDir('pyftpd');
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(dir, 'server.py'), PYFTPD);
  const proc = start(PYTHON, [path.join(dir, 'server.py'), home], path.join(dir, 'out.log'));
  const port = await poll('pyftpdlib to listen', () => {
    const m = /^port (\d+)$/m.exec(proc.output());
    if (!m && proc.child.exitCode !== null) throw new Error(`pyftpdlib exited:\n${proc.output()}`);
    return m && Number(m[1]);
  });
  return { ...proc, name: 'pyftpdlib', port, user: 'user', pass: 'pass', uploadDir: '', uploadLocal: home, dir };
}

/** vsftpd on 127.0.0.1 (a free port), anonymous, uploads in `pub/`. */
export async function startVsftpd() {
  const dir = tempDir('vsftpd');
  const root = path.join(dir, 'root');
  const pub = path.join(root, 'pub');
  fs.mkdirSync(pub, { recursive: true });
  // vsftpd refuses an anonymous root the anonymous user can write to.
  fs.chmodSync(root, 0o755);
  fs.chmodSync(pub, 0o777);
  fs.mkdirSync('/var/run/vsftpd/empty', { recursive: true });
  const port = await freePort();
  const config = [
    'listen=YES', 'listen_ipv6=NO', 'listen_address=127.0.0.1', `listen_port=${port}`,
    'background=NO', 'anonymous_enable=YES', 'no_anon_password=YES', 'local_enable=NO',
    'write_enable=YES', 'anon_upload_enable=YES', 'anon_mkdir_write_enable=YES',
    'anon_other_write_enable=YES', 'anon_world_readable_only=NO', 'anon_umask=022',
    `anon_root=${root}`, 'pasv_enable=YES', 'port_enable=YES', 'connect_from_port_20=NO',
    'seccomp_sandbox=NO', 'secure_chroot_dir=/var/run/vsftpd/empty', 'ftp_username=ftp',
    'xferlog_enable=YES', 'log_ftp_protocol=YES', `vsftpd_log_file=${path.join(dir, 'vsftpd.log')}`,
    'xferlog_std_format=NO', 'dual_log_enable=NO', 'max_clients=50', 'max_per_ip=50',
    'idle_session_timeout=120', 'data_connection_timeout=60', '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'vsftpd.conf'), config);
  const proc = start('/usr/sbin/vsftpd', [path.join(dir, 'vsftpd.conf')], path.join(dir, 'out.log'));
  await poll('vsftpd to listen', async () => {
    if (proc.child.exitCode !== null) throw new Error(`vsftpd exited:\n${proc.output()}`);
    return canConnect(port);
  });
  return { ...proc, name: 'vsftpd', port, user: 'anonymous', pass: 'test@example.invalid', uploadDir: 'pub', uploadLocal: pub, dir };
}

/** The example gateway in front of 127.0.0.1:`serverPort`; resolves once it printed its line. */
export async function startGateway(serverPort, listenHost = '127.0.0.1') {
  const dir = tempDir('gateway');
  const listen = listenHost.includes(':') ? `[${listenHost}]:0` : `${listenHost}:0`;
  const proc = start(process.execPath, [GATEWAY, '--listen', listen, '--server', `127.0.0.1:${serverPort}`],
    path.join(dir, 'out.log'));
  const port = await poll('the gateway to listen', () => {
    const m = /^ftp-gateway listening on (?:\[[^\]]+\]|[\d.]+):(\d+),/m.exec(proc.output());
    if (!m && proc.child.exitCode !== null) throw new Error(`gateway exited:\n${proc.output()}`);
    return m && Number(m[1]);
  });
  return { ...proc, port, dir };
}

/** Whether this machine has IPv6 loopback (containers may not). */
export function hasIpv6Loopback() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.on('error', () => resolve(false));
    s.listen(0, '::1', () => s.close(() => resolve(true)));
  });
}

/** Runs a program to completion; resolves with {code, stdout, stderr}, never rejects. */
export function run(command, args, timeoutMs = 60_000) {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }));
  });
}

/** Python ftplib: `op` is upload/list/download/sendcmd (see ftplib_client.py). */
export function ftplib(port, server, mode, op, ...args) {
  return run(PYTHON, [FTPLIB_CLIENT, '127.0.0.1', String(port), server.user, server.pass, mode, op, ...args]);
}

/** A file of `size` pseudo-random bytes; its sha256. */
export function makeFile(file, size) {
  let state = size ^ 0x9e3779b9;
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  fs.writeFileSync(file, bytes);
  return sha256(file);
}

export function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
