// Cost per control line through the npm package: one session is fed N command/reply pairs
// (a client line, then the server's reply, one call each, as a gateway would), and the
// time per line, JS -> wasm -> actions -> JS objects included, is printed.
//
//   node wasm-component/js/bench/control-line.mjs [PAIRS]   (default 100000)

import { Session } from '../pkg/ftp_tunnel.js';

const pairs = Number(process.argv[2] ?? 100_000);
if (!Number.isInteger(pairs) || pairs < 1 || pairs > 10_000_000) {
  process.stderr.write('control-line: PAIRS must be a whole number from 1 to 10000000\n');
  process.exit(2);
}

const enc = new TextEncoder();
const command = enc.encode('CWD /pub/some/directory\r\n');
const reply = enc.encode('250 Directory successfully changed.\r\n');

function feed(session, n) {
  let out = 0;
  for (let i = 0; i < n; i++) {
    out += session.fromClient(command).length;
    out += session.fromServer(reply).length;
  }
  return out;
}

const session = new Session({ clientPeer: '127.0.0.1', serverHost: '127.0.0.1' });
session.fromServer(enc.encode('220 ready\r\n'));
feed(session, Math.min(pairs, 10_000)); // warm up the JIT and the wasm tier-up

const start = process.hrtime.bigint();
const cpuStart = process.cpuUsage();
const actions = feed(session, pairs);
const cpu = process.cpuUsage(cpuStart);
const ns = Number(process.hrtime.bigint() - start);
if (actions !== 2 * pairs) throw new Error(`expected ${2 * pairs} actions, got ${actions}`);
const lines = 2 * pairs;
// CPU time as well as wall time: on a shared machine the wall clock includes waiting for a core.
const cpuUs = (cpu.user + cpu.system) / lines;
console.log(`${lines} control lines: ${(ns / lines / 1e3).toFixed(2)} µs/line wall, ${cpuUs.toFixed(2)} µs/line CPU ` +
  `(node ${process.version})`);
