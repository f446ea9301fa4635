// The example gateway (example/ftp-gateway.mjs) with real FTP servers (pyftpdlib, vsftpd)
// and real clients (curl, Python ftplib): passive and active, upload, list, download, sha256;
// a bounce PORT refused; an FTP server that cannot be reached; a data connection from the
// wrong address refused.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  GATEWAY, freePort, ftplib, hasIpv6Loopback, makeFile, poll, run, sha256, startGateway, startPyftpd, startVsftpd,
  tempDir, within,
} from './fixtures.mjs';

const SIZE = 3 * 1024 * 1024 + 17; // several socket buffers: proves the 226 waits for the data

function curl(gw, server, mode, ...args) {
  const active = mode === 'active' ? ['--ftp-port', '-'] : [];
  return run('curl', ['-sS', '--fail', '--max-time', '60', '--user', `${server.user}:${server.pass}`, ...active, ...args]);
}

const clients = {
  /** curl: one process per operation. */
  curl: {
    upload: (gw, server, mode, local, name) =>
      curl(gw, server, mode, '-T', local, `ftp://127.0.0.1:${gw.port}/${remote(server, name)}`),
    list: (gw, server, mode) => curl(gw, server, mode, `ftp://127.0.0.1:${gw.port}/${server.uploadDir}${server.uploadDir ? '/' : ''}`),
    download: (gw, server, mode, name, local) =>
      curl(gw, server, mode, '-o', local, `ftp://127.0.0.1:${gw.port}/${remote(server, name)}`),
  },
  /** Python ftplib: one session per operation. */
  ftplib: {
    upload: (gw, server, mode, local, name) => ftplib(gw.port, server, mode, 'upload', local, remote(server, name)),
    list: (gw, server, mode) => ftplib(gw.port, server, mode, 'list', server.uploadDir),
    download: (gw, server, mode, name, local) => ftplib(gw.port, server, mode, 'download', remote(server, name), local),
  },
};

function remote(server, name) {
  return server.uploadDir ? `${server.uploadDir}/${name}` : name;
}

function ok(result, what) {
  assert.equal(result.code, 0, `${what} failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

for (const [serverName, startServer] of [['pyftpdlib', startPyftpd], ['vsftpd', startVsftpd]]) {
  describe(`gateway in front of ${serverName}`, () => {
    let server;
    let gw;
    let work;
    before(async () => {
      work = tempDir('work');
      server = await startServer();
      gw = await startGateway(server.port);
    });
    after(async () => {
      await gw?.stop();
      await server?.stop();
    });
    /** A test whose failure message carries the gateway's and the server's output. */
    const withLogs = (body) => async () => {
      try {
        await body();
      } catch (e) {
        const logs = [gw, server].filter(Boolean).map((p) => `--- ${p.log}\n${p.output()}`).join('\n');
        e.message += `\n${logs}`;
        throw e;
      }
    };

    for (const [clientName, client] of Object.entries(clients)) {
      for (const mode of ['passive', 'active']) {
        test(`${clientName} ${mode}: upload, list, download, sha256`, withLogs(async () => {
          const name = `${clientName}-${mode}.bin`;
          const local = path.join(work, name);
          const sum = makeFile(local, SIZE);

          ok(await client.upload(gw, server, mode, local, name), 'upload');
          assert.equal(sha256(path.join(server.uploadLocal, name)), sum, 'the file on the server');

          const listing = ok(await client.list(gw, server, mode), 'list').stdout;
          assert.match(listing, new RegExp(`\\b${SIZE}\\b.*${name.replace('.', '\\.')}`), listing);

          const back = path.join(work, `${name}.back`);
          ok(await client.download(gw, server, mode, name, back), 'download');
          assert.equal(sha256(back), sum, 'the file downloaded');

          // The data went through data paths the gateway opened, not straight to the server.
          const verbs = mode === 'passive' ? /rewrite: 2(27|29) / : /rewrite: (PORT|EPRT) /;
          assert.match(gw.output(), verbs, gw.output());
        }));
      }
    }

    test('a bounce PORT/EPRT is refused with 504 and never reaches the server', withLogs(async () => {
      for (const command of ['PORT 127,0,0,2,4,1', 'EPRT |1|127.0.0.2|1025|']) {
        const result = await ftplib(gw.port, server, 'active', 'sendcmd', command);
        assert.equal(result.code, 3, `${command}: ${result.stdout}${result.stderr}`);
        assert.match(result.stdout, /^504 (PORT|EPRT) refused: 127\.0\.0\.2 is not this FTP client's address/);
      }
      if (serverName === 'vsftpd') {
        const log = fs.readFileSync(path.join(server.dir, 'vsftpd.log'), 'utf8');
        assert.match(log, /"USER anonymous"/, 'vsftpd logs commands');
        assert.doesNotMatch(log, /127,0,0,2|127\.0\.0\.2/, log);
      }
    }));
  });
}

const ipv6 = await hasIpv6Loopback();
describe('gateway for an IPv6 client in front of an IPv4 server', () => {
  let server;
  let gw;
  let work;
  before(async () => {
    if (!ipv6) return;
    work = tempDir('work6');
    server = await startPyftpd();
    gw = await startGateway(server.port, '::1');
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  for (const mode of ['passive', 'active']) {
    test(`curl ${mode} over [::1]: upload, download, sha256`, { skip: !ipv6 && 'no IPv6 loopback here' }, async () => {
      const name = `v6-${mode}.bin`;
      const local = path.join(work, name);
      const sum = makeFile(local, 256 * 1024);
      const url = `ftp://[::1]:${gw.port}/${name}`;
      ok(await curl(gw, server, mode, '-g', '-T', local, url), 'upload');
      assert.equal(sha256(path.join(server.uploadLocal, name)), sum);
      const back = path.join(work, `${name}.back`);
      ok(await curl(gw, server, mode, '-g', '-o', back, url), 'download');
      assert.equal(sha256(back), sum);
      // EPSV answered with a port only; EPRT naming ::1 becomes PORT/EPRT on the IPv4 side.
      const rewrite = mode === 'passive' ? /rewrite: 229 .* -> 229 / : /rewrite: EPRT \|2\|::1\|\d+\| -> (PORT 127,0,0,1,|EPRT \|1\|127\.0\.0\.1\|)/;
      assert.match(gw.output(), rewrite, gw.output());
    });
  }
});

/** A minimal FTP client on a raw socket: final replies as strings. */
async function rawControl(port) {
  const socket = net.connect({ host: '127.0.0.1', port });
  let buffer = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk) => { buffer += chunk; });
  const closed = new Promise((resolve) => socket.on('close', resolve));
  const reply = () => poll('a reply', () => {
    const m = /^(\d{3}) .*\r\n/m.exec(buffer);
    if (!m) return null;
    const end = m.index + m[0].length;
    const text = buffer.slice(0, end);
    buffer = buffer.slice(end);
    return text;
  });
  const send = async (line) => { socket.write(`${line}\r\n`); return reply(); };
  return { socket, reply, send, closed };
}

describe('gateway data paths', () => {
  let server;
  let gw;
  before(async () => {
    server = await startPyftpd();
    gw = await startGateway(server.port);
  });
  after(async () => {
    await gw?.stop();
    await server?.stop();
  });

  test('a passive data connection from another address than the client is cut; the client gets its data', async () => {
    fs.writeFileSync(path.join(server.uploadLocal, 'hello.txt'), 'hello through the gateway\n');
    const ftp = await rawControl(gw.port);
    assert.match(await ftp.reply(), /^220 /);
    assert.match(await ftp.send('USER user'), /^331 /);
    assert.match(await ftp.send('PASS pass'), /^230 /);
    assert.match(await ftp.send('TYPE I'), /^200 /);
    const pasv = await ftp.send('PASV');
    const [, p1, p2] = /\(127,0,0,1,(\d+),(\d+)\)/.exec(pasv) ?? assert.fail(pasv);
    const dataPort = Number(p1) * 256 + Number(p2);

    // From 127.0.0.2 (a loopback address, but not the control connection's peer): cut.
    const intruder = net.connect({ host: '127.0.0.1', port: dataPort, localAddress: '127.0.0.2' });
    intruder.on('error', () => {});
    let intruderGot = '';
    intruder.on('data', (d) => { intruderGot += d; });
    await within('the gateway to cut the intruder', new Promise((resolve) => intruder.on('close', resolve)));
    assert.equal(intruderGot, '');
    await poll('the refusal logged', () => gw.output().includes('refused a connection from 127.0.0.2'));

    // The client itself gets its data, and the 226 once all of it was delivered, even
    // though it keeps its end of the data connection open (half-closed).
    const data = net.connect({ host: '127.0.0.1', port: dataPort, allowHalfOpen: true });
    let got = '';
    data.on('data', (d) => { got += d; });
    const dataEnded = new Promise((resolve) => data.on('end', resolve));
    await within('the data connection', new Promise((resolve) => data.on('connect', resolve)));
    assert.match(await ftp.send('RETR hello.txt'), /^1(25|50) /);
    assert.match(await ftp.reply(), /^226 /);
    await within('the end of the data', dataEnded);
    assert.equal(got, 'hello through the gateway\n');
    data.destroy();
    assert.match(await ftp.send('QUIT'), /^221 /);
    await within('the control connection to close', ftp.closed);
  });
});

describe('gateway without a reachable FTP server', () => {
  let gw;
  let deadPort;
  before(async () => {
    deadPort = await freePort(); // nothing listens there
    gw = await startGateway(deadPort);
  });
  after(async () => { await gw?.stop(); });

  test('the client gets a 421 naming the server, then the connection closes', async () => {
    const ftp = await rawControl(gw.port);
    const reply = await ftp.reply();
    assert.match(reply, new RegExp(`^421 Service not available: ftp-gateway cannot reach the FTP server 127\\.0\\.0\\.1:${deadPort} \\(ECONNREFUSED\\)\\.\r\n$`));
    await within('the control connection to close', ftp.closed);
  });

  test('ftplib reports the 421', async () => {
    const result = await ftplib(gw.port, { user: 'u', pass: 'p' }, 'passive', 'list', '');
    assert.notEqual(result.code, 0);
    assert.match(`${result.stdout}${result.stderr}`, /421 Service not available: ftp-gateway cannot reach the FTP server/);
  });
});

test('bad arguments: one line on stderr, exit status 2', async () => {
  for (const args of [['--listen', 'nonsense', '--server', '127.0.0.1:21'], ['--listen', '127.0.0.1:0'], ['--bogus']]) {
    const result = await run(process.execPath, [GATEWAY, ...args]);
    assert.equal(result.code, 2, JSON.stringify(args));
    assert.match(result.stderr, /^ftp-gateway: .+\n$/, result.stderr);
  }
});
