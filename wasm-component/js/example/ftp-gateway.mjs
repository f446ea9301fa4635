#!/usr/bin/env node
// An FTP gateway in plain Node, driven by the ftp-tunnel core (the npm package in ../pkg).
//
//   node ftp-gateway.mjs --listen HOST:PORT --server HOST:PORT
//
// FTP clients connect to --listen; each gets its own connection to the FTP server at
// --server. The core reads both control directions and says what to do; this file does the
// I/O: it relays control bytes, and carries every data connection itself:
//   passive  the client connects to a listener here; we connect on to the server's data port
//   active   the server connects to a listener here; we connect on to the client's data port
// Data bytes never pass through the core. Notes (rewrites, refusals) are logged to stderr.

import net from 'node:net';
import { parseArgs } from 'node:util';
import { Session } from '../pkg/ftp_tunnel.js';

const DATA_ACCEPT_TIMEOUT_MS = 30_000; // a data path nobody connects to is given up
const SERVER_CONNECT_TIMEOUT_MS = 10_000;

function fail(message) {
  process.stderr.write(`ftp-gateway: ${message}\n`);
  process.exit(2);
}

/** "HOST:PORT" or "[V6]:PORT" -> {host, port}. */
function hostPort(option, text) {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text ?? '');
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) fail(`${option} wants HOST:PORT (or [IPv6]:PORT), got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2], port };
}

/** Node reports IPv4 peers of a dual-stack socket as "::ffff:a.b.c.d"; FTP wants a.b.c.d. */
function plainIp(address) {
  return address?.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

const cli = (() => {
  try {
    return parseArgs({ options: { listen: { type: 'string' }, server: { type: 'string' } } }).values;
  } catch (e) {
    return fail(e.message);
  }
})();
const listen = hostPort('--listen', cli.listen);
const server = hostPort('--server', cli.server);

/** One FTP client's control connection, its server connection, and their data paths. */
function serveClient(client) {
  const clientPeer = plainIp(client.remoteAddress);
  const label = `${clientPeer}:${client.remotePort}`;
  let session;
  try {
    session = new Session({ clientPeer, serverHost: server.host });
  } catch (e) {
    client.end(`421 ftp-gateway: ${e.message}\r\n`);
    return;
  }
  const paths = new Map(); // data path id -> {close()}
  let alive = true;
  let upstreamReady = false;

  const upstream = net.connect({ host: server.host, port: server.port });
  upstream.setTimeout(SERVER_CONNECT_TIMEOUT_MS, () => upstream.destroy(new Error('timed out')));
  upstream.on('connect', () => {
    upstreamReady = true;
    upstream.setTimeout(0);
  });

  // Feeds one input to the core (if this session still runs) and carries out what it asks.
  // A throw (a malformed answer: a bug here) ends this client's session, not the gateway.
  function step(call) {
    if (!alive) return;
    let actions;
    try {
      actions = call();
    } catch (e) {
      process.stderr.write(`${label} ftp-gateway: ${e.message}\n`);
      client.write('421 ftp-gateway: internal error; closing this session.\r\n');
      return end();
    }
    run(actions);
  }

  function run(actions) {
    for (const action of actions) {
      switch (action.type) {
        case 'toServer': upstream.write(action.bytes); break;
        case 'toClient': client.write(action.bytes); break;
        case 'openDataPath': openDataPath(action); break;
        case 'closeDataPath': paths.get(action.id)?.close(); break;
        case 'checkCommand': // never asked: this gateway leaves checkCommands off
          setImmediate(() => step(() => session.commandVerdict(action.id, 'allow')));
          break;
        case 'note':
          process.stderr.write(`${label} ${action.kind}: ${action.original} -> ${action.replacement}\n`);
          break;
      }
    }
  }

  // A listener that accepts one connection from the expected peer and carries it to the
  // target; answers the core when it listens, and reports the connection's progress.
  function openDataPath({ id, mode, targetHost, targetPort, expectPeer }) {
    // Passive: the client connects to us, at the address it reached us at. Active: the
    // server connects, at the address it sees us at; if the core does not know the server's
    // address (a host name), we do.
    const side = mode === 'passive' ? client : upstream;
    const expected = plainIp(expectPeer ?? (mode === 'active' ? upstream.remoteAddress : null));
    const sockets = new Set();
    let closed = false;
    let open = 2; // sockets of the data connection not yet closed
    let connected = false; // both ends of the data connection are up
    let failure = null; // why the data connection did not deliver everything, if it did not
    const listener = net.createServer({ pauseOnConnect: true });
    const timer = setTimeout(() => {
      if (sockets.size === 0) {
        finish(notConnected(`no data connection within ${DATA_ACCEPT_TIMEOUT_MS / 1000} s`));
      }
    }, DATA_ACCEPT_TIMEOUT_MS);
    function notConnected(reason) { return { err: { kind: 'notConnected', reason } }; }

    function close() { // the core is done with it: report nothing more
      closed = true;
      paths.delete(id);
      shutDown();
    }
    function shutDown() {
      clearTimeout(timer);
      listener.close();
      for (const s of sockets) s.destroy();
    }
    // The data connection is over (or never came): tell the core once, and how it went, so
    // that a server's 226 for data the client never got reaches it as a 426.
    function finish(outcome = 'ok') {
      if (closed) return;
      closed = true;
      paths.delete(id);
      shutDown();
      step(() => session.dataFinished(id, outcome));
    }
    paths.set(id, { close });

    listener.on('connection', (incoming) => {
      if ((expected && plainIp(incoming.remoteAddress) !== expected) || sockets.size > 0) {
        process.stderr.write(`${label} data path ${id}: refused a connection from ${incoming.remoteAddress}\n`);
        incoming.destroy();
        return;
      }
      clearTimeout(timer);
      listener.close(); // one data connection per path
      const outgoing = net.connect({ host: targetHost, port: targetPort });
      for (const [from, to] of [[incoming, outgoing], [outgoing, incoming]]) {
        sockets.add(to);
        to.on('error', (e) => {
          failure ??= connected
            ? { err: { kind: 'broken', reason: e.code ?? e.message } }
            : notConnected(`cannot reach ${targetHost}:${targetPort}: ${e.code ?? e.message}`);
          incoming.destroy();
          outgoing.destroy();
        });
        to.on('close', () => { if (--open === 0) finish(failure ?? 'ok'); }); // failed, or both sides done
        // Done when one side has sent everything and it was all written to the other side
        // (pipe() ends `to` after `from` ended; 'finish' = flushed, FIN sent).
        to.on('finish', () => { if (from.readableEnded) finish(); });
      }
      outgoing.on('connect', () => {
        connected = true;
        incoming.pipe(outgoing);
        outgoing.pipe(incoming);
        incoming.resume();
        if (mode === 'active' && !closed) step(() => session.dataConnected(id));
      });
    });
    listener.on('error', (e) => {
      if (closed || listener.listening) return finish(notConnected(e.message));
      closed = true;
      paths.delete(id);
      shutDown();
      step(() => session.forwardOpened(id, { err: { kind: 'failed', reason: e.message } }));
    });
    listener.listen(0, plainIp(side.localAddress), () => {
      if (closed) return;
      const address = plainIp(listener.address().address);
      step(() => session.forwardOpened(id, { ok: { address, port: listener.address().port } }));
    });
  }

  function end() {
    if (!alive) return;
    alive = false;
    for (const path of [...paths.values()]) path.close();
    session.free(); // the core's memory in the wasm instance; nothing calls it any more
    client.end();
    upstream.end();
  }

  client.on('data', (bytes) => step(() => session.fromClient(bytes)));
  upstream.on('data', (bytes) => step(() => session.fromServer(bytes)));
  client.on('error', () => upstream.destroy());
  client.on('close', () => { end(); upstream.destroy(); });
  upstream.on('error', (e) => {
    if (!upstreamReady && alive) {
      client.write(`421 Service not available: ftp-gateway cannot reach the FTP server ` +
        `${server.host}:${server.port} (${e.code ?? e.message}).\r\n`);
    }
    end();
  });
  upstream.on('end', end);
}

const gateway = net.createServer(serveClient);
gateway.on('error', (e) => fail(`cannot listen on ${cli.listen}: ${e.message}`));
gateway.listen(listen.port, listen.host, () => {
  const { address, port } = gateway.address();
  const shown = address.includes(':') ? `[${address}]` : address;
  console.log(`ftp-gateway listening on ${shown}:${port}, FTP server ${cli.server}`);
});
