// The npm package's API in-process: configuration errors, the action objects, the answers.
// Fast checks of the glue; the gateway tests prove it with real servers and clients.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session } from '../pkg/ftp_tunnel.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (text) => enc.encode(text);
const text = (action) => dec.decode(action.bytes);

function session(extra = {}) {
  return new Session({ clientPeer: '127.0.0.1', serverHost: '127.0.0.1', ...extra });
}

/** A logged-in session (greeting and login relayed). */
function loggedIn(extra) {
  const s = session(extra);
  s.fromServer(bytes('220 hi\r\n'));
  s.fromClient(bytes('USER u\r\n'));
  s.fromServer(bytes('331 pass\r\n'));
  s.fromClient(bytes('PASS p\r\n'));
  s.fromServer(bytes('230 in\r\n'));
  return s;
}

test('a bad configuration throws an Error naming the field', () => {
  const cases = [
    [{ clientPeer: 'localhost', serverHost: 'h' }, /config\.clientPeer: "localhost" is not an IP address/],
    [{ clientPeer: '127.0.0.1' }, /config\.serverHost: expected a string, got undefined/],
    [{ clientPeer: '127.0.0.1', serverHost: 'h', maxLine: 100 }, /max_line 100 is below the 512 bytes/],
    [{ clientPeer: '127.0.0.1', serverHost: 'h', maxLine: 1.5 }, /config\.maxLine: 1\.5 is not a whole number/],
    [{ clientPeer: '127.0.0.1', serverHost: '' }, /FTP server host "" is empty/],
    [{ clientPeer: '127.0.0.1', serverHost: 'h', trustPasiveAddress: true }, /unknown property "trustPasiveAddress"/],
    [{ clientPeer: '127.0.0.1', serverHost: 'h', checkCommands: 'yes' }, /config\.checkCommands: expected a boolean/],
    [null, /config: expected an object, got null/],
    [{ clientPeer: '::ffff:127.0.0.1', serverHost: 'h', maxLine: -1 }, /config\.maxLine: -1 is not/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => new Session(config), (e) => e instanceof Error && message.test(e.message),
      JSON.stringify(config));
    assert.throws(() => Session.create(config), message);
  }
});

test('bytes are relayed as toClient/toServer actions, in order', () => {
  const s = session();
  assert.deepEqual(s.fromServer(bytes('220 hello\r\n')).map((a) => [a.type, text(a)]),
    [['toClient', '220 hello\r\n']]);
  const actions = s.fromClient(bytes('USER a\r\nNOOP\r\n'));
  assert.deepEqual(actions.map((a) => [a.type, text(a)]), [['toServer', 'USER a\r\n'], ['toServer', 'NOOP\r\n']]);
  assert.ok(actions[0].bytes instanceof Uint8Array);
});

test('passive: openDataPath, then the reply names the address forwardOpened gave', () => {
  const s = loggedIn();
  assert.deepEqual(s.fromClient(bytes('PASV\r\n')).map((a) => a.type), ['toServer']);
  const [open, ...rest] = s.fromServer(bytes('227 Entering Passive Mode (127,0,0,1,4,1).\r\n'));
  assert.deepEqual(rest, []);
  assert.deepEqual(open, {
    type: 'openDataPath', id: open.id, mode: 'passive', targetHost: '127.0.0.1', targetPort: 1025,
    expectPeer: '127.0.0.1',
  });
  const answer = s.forwardOpened(open.id, { ok: { address: '127.0.0.9', port: 5000 } });
  assert.deepEqual(answer.map((a) => a.type), ['note', 'toClient']);
  assert.equal(answer[0].kind, 'rewrite');
  assert.equal(answer[0].forward, open.id);
  assert.equal(text(answer[1]), '227 Entering Passive Mode (127,0,0,9,19,136).\r\n');

  // The transfer's 226 waits until the data connection delivered everything.
  s.fromClient(bytes('LIST\r\n'));
  assert.deepEqual(s.fromServer(bytes('150 here\r\n')).map(text), ['150 here\r\n']);
  assert.deepEqual(s.fromServer(bytes('226 done\r\n')), []);
  const finished = s.dataFinished(open.id);
  assert.deepEqual(finished.map((a) => a.type), ['note', 'toClient', 'closeDataPath']);
  assert.equal(finished[0].kind, 'transfer');
  assert.equal(text(finished[1]), '226 done\r\n');
  assert.equal(finished[2].id, open.id);
});

test('a data path reported failed turns the held 226 into a 426 with the reason', () => {
  const s = loggedIn();
  s.fromClient(bytes('EPSV\r\n'));
  const [open] = s.fromServer(bytes('229 Entering Extended Passive Mode (|||40001|)\r\n'));
  s.forwardOpened(open.id, { ok: { address: '127.0.0.9', port: 5000 } });
  s.fromClient(bytes('RETR small\r\n'));
  assert.deepEqual(s.fromServer(bytes('150 here\r\n226 done\r\n')).map(text), ['150 here\r\n']);
  const finished = s.dataFinished(open.id, { err: { kind: 'notConnected', reason: 'nobody came in 30 s' } });
  assert.deepEqual(finished.map((a) => a.type), ['note', 'toClient', 'closeDataPath']);
  assert.equal(
    text(finished[1]),
    '426 Connection closed; transfer aborted: nobody came in 30 s (the FTP server said: 226 done)\r\n',
  );
  assert.match(finished[0].replacement, /^426 /);
});

test('dataFinished with an outcome of neither shape throws, naming the field', () => {
  const s = loggedIn();
  assert.throws(() => s.dataFinished(1, 'fine'), /outcome: "fine" is not one of/);
  assert.throws(
    () => s.dataFinished(1, { err: { kind: 'lost', reason: 'x' } }),
    /outcome\.err\.kind: "lost" is not one of/,
  );
  assert.deepEqual(s.dataFinished(1, 'ok'), [], 'a path never asked for is ignored');
});

test('a data path that could not be opened gives the client 425 with the reason', () => {
  const s = loggedIn();
  s.fromClient(bytes('EPSV\r\n'));
  const [open] = s.fromServer(bytes('229 Entering Extended Passive Mode (|||40001|)\r\n'));
  const answer = s.forwardOpened(open.id, { err: { kind: 'failed', reason: 'no free port' } });
  assert.deepEqual(answer.map((a) => [a.type, a.kind]), [['note', 'forwardFailed'], ['toClient', undefined]]);
  assert.match(text(answer[1]), /^425 .*no free port/);
});

test('malformed answers throw and leave the session waiting', () => {
  const s = loggedIn();
  s.fromClient(bytes('PASV\r\n'));
  const [open] = s.fromServer(bytes('227 Entering Passive Mode (127,0,0,1,4,1).\r\n'));
  const bad = [
    [{ ok: { address: 'gateway.local', port: 1 } }, /result\.ok\.address: "gateway\.local" is not an IP address/],
    [{ ok: { address: '127.0.0.1', port: 70000 } }, /result\.ok\.port: 70000 is not a whole number from 1 to 65535/],
    [{ err: { kind: 'oops', reason: '' } }, /result\.err\.kind: "oops" is not one of/],
    [{ ok: { address: '127.0.0.1', port: 1 }, err: { kind: 'failed', reason: '' } }, /exactly one of/],
    ['yes', /result: expected an object/],
  ];
  for (const [result, message] of bad) assert.throws(() => s.forwardOpened(open.id, result), message);
  assert.throws(() => s.commandVerdict(1, 'maybe'), /verdict: "maybe" is not one of/);
  const answer = s.forwardOpened(open.id, { ok: { address: '::ffff:127.0.0.1', port: 1026 } });
  assert.equal(text(answer.at(-1)), '227 Entering Passive Mode (127,0,0,1,4,2).\r\n');
});

test('active: openDataPath toward the client, the rewritten PORT names our listener', () => {
  const s = loggedIn();
  const [open] = s.fromClient(bytes('PORT 127,0,0,1,200,10\r\n'));
  assert.deepEqual(open, {
    type: 'openDataPath', id: open.id, mode: 'active', targetHost: '127.0.0.1', targetPort: 51210,
    expectPeer: '127.0.0.1',
  });
  const answer = s.forwardOpened(open.id, { ok: { address: '127.0.0.1', port: 1027 } });
  assert.deepEqual(answer.map((a) => a.type), ['note', 'toServer']);
  assert.equal(text(answer[1]), 'PORT 127,0,0,1,4,3\r\n');
  s.fromServer(bytes('200 ok\r\n'));
  s.fromClient(bytes('RETR f\r\n'));
  // The 150 waits until the data connection reached the client.
  assert.deepEqual(s.fromServer(bytes('150 go\r\n')), []);
  assert.deepEqual(s.dataConnected(open.id).map(text), ['150 go\r\n']);
});

test('a bounce PORT is refused with 504 and never reaches the server', () => {
  const s = loggedIn();
  const actions = s.fromClient(bytes('PORT 127,0,0,2,4,1\r\n'));
  assert.deepEqual(actions.map((a) => [a.type, a.kind]), [['note', 'refused'], ['toClient', undefined]]);
  assert.match(text(actions[1]), /^504 PORT refused: 127\.0\.0\.2 is not this FTP client's address/);
});

test('checkCommands: every command waits for commandVerdict', () => {
  const s = session({ checkCommands: true });
  s.fromServer(bytes('220 hi\r\n'));
  const [check] = s.fromClient(bytes('STOR secret.txt\r\nNOOP\r\n'));
  assert.deepEqual(check, { type: 'checkCommand', id: check.id, verb: 'STOR', argument: 'secret.txt' });
  const denied = s.commandVerdict(check.id, { deny: 'no uploads' });
  assert.deepEqual(denied.map((a) => a.type), ['note', 'toClient', 'checkCommand']);
  assert.equal(denied[0].kind, 'denied');
  assert.equal(text(denied[1]), '550 denied by policy: no uploads\r\n');
  assert.equal(denied[2].verb, 'NOOP');
  assert.deepEqual(s.commandVerdict(denied[2].id, 'allow').map(text), ['NOOP\r\n']);
});

test('an IPv4-mapped clientPeer (a dual-stack socket\'s peer) is taken as the IPv4 address', () => {
  const s = Session.create({ clientPeer: '::ffff:127.0.0.1', serverHost: 'ftp.example.invalid' });
  assert.ok(s instanceof Session);
  s.fromServer(bytes('220 hi\r\n'));
  s.fromClient(bytes('EPSV\r\n'));
  const [open] = s.fromServer(bytes('229 Entering Extended Passive Mode (|||40001|)\r\n'));
  assert.deepEqual([open.targetHost, open.targetPort, open.expectPeer], ['ftp.example.invalid', 40001, '127.0.0.1']);
  // The client's own address in PORT is not a bounce; the new data path replaces the old.
  s.forwardOpened(open.id, { ok: { address: '127.0.0.1', port: 2000 } });
  const [close, active] = s.fromClient(bytes('PORT 127,0,0,1,7,208\r\n'));
  assert.deepEqual(close, { type: 'closeDataPath', id: open.id });
  // expectPeer is null: the server is a host name, the session cannot know its address.
  assert.deepEqual([active.type, active.mode, active.targetHost, active.expectPeer],
    ['openDataPath', 'active', '127.0.0.1', null]);
  s.free();
});
