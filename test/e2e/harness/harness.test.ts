import test from 'ava';
import {
  answer,
  createNetns,
  createPodInternet,
  createTestPki,
  execInNetns,
  host,
  netnsTests,
  addServerAddress,
  probe,
  spawnInNetns,
  spawnNodeInNetns,
  startServers,
  uniqueName,
  waitForListen,
  type TeardownHost,
} from './index.ts';

const PREFIX = 'egi-';
const e2e = await netnsTests(PREFIX, 'netns harness (skipped)');

test('unique names fit in 15 characters and refuse long prefixes', (t) => {
  const names = new Set(Array.from({ length: 50 }, () => uniqueName(PREFIX)));
  t.is(names.size, 50);
  for (const n of names) {
    t.true(n.startsWith(PREFIX));
    t.true(n.length <= 15);
  }
  t.throws(() => uniqueName('a-very-long-pre'), { message: /prefix/ });
});

/** Runs teardowns now, in reverse like ava, to check what they leave behind. */
function manualTeardown(): TeardownHost & { run(): Promise<void> } {
  const fns: Array<() => unknown> = [];
  return {
    teardown: (fn) => void fns.push(fn),
    async run() {
      for (const fn of fns.reverse()) await fn();
    },
  };
}

e2e('teardown stops processes and deletes the namespaces', async (t) => {
  const td = manualTeardown();
  const topo = await createPodInternet(td, PREFIX);
  const sleeper = spawnInNetns(td, topo.pod, 'sleep', ['600'], { uid: 1000 });
  const stray = spawnInNetns(td, topo.internet, 'sleep', ['600']);
  t.true((await host(['ip', 'netns', 'list'])).includes(topo.pod));
  await td.run();
  t.not((await sleeper.exited).signal, null);
  t.not((await stray.exited).signal, null);
  const left = await host(['ip', 'netns', 'list']);
  t.false(left.includes(topo.pod));
  t.false(left.includes(topo.internet));
});

e2e('pod reaches http, https, tcp and udp servers in the internet namespace, as any uid', async (t) => {
  const topo = await createPodInternet(t, PREFIX);
  await addServerAddress(topo, '192.168.77.10');
  const pki = await createTestPki(t, ['api.example.test', '192.168.77.10']);
  await startServers(t, topo.internet, {
    name: 'internet',
    certFile: pki.certFile,
    keyFile: pki.keyFile,
    servers: [
      { kind: 'http', host: '::', port: 80 },
      { kind: 'https', host: '0.0.0.0', port: 443 },
      { kind: 'tcp', host: '0.0.0.0', port: 7000 },
      { kind: 'udp', host: '0.0.0.0', port: 7001 },
    ],
  });
  await waitForListen(topo.internet, 7001, { protocol: 'udp' });

  const http = await execInNetns(topo.pod, 'curl', ['-sS', `http://[${topo.internetIp6}]/x`], { uid: 1000 });
  t.is(http.code, 0, http.stderr);
  t.like(JSON.parse(http.stdout), { server: 'internet', kind: 'http', url: '/x', remoteAddress: topo.podIp6 });

  const https = await execInNetns(topo.pod, 'curl', ['-sS', '--cacert', pki.caFile, '--resolve', 'api.example.test:443:192.168.77.10', 'https://api.example.test/y'], { uid: 1000 });
  t.is(https.code, 0, https.stderr);
  t.like(JSON.parse(https.stdout), { kind: 'https', sni: 'api.example.test', host: 'api.example.test', localAddress: '192.168.77.10' });

  const tcp = answer<{ remoteAddress: string; originalDst: unknown }>(await probe(topo.pod, { kind: 'tcp', host: topo.internetIp, port: 7000 }, { uid: 1000 }));
  t.is(tcp.remoteAddress, topo.podIp);
  t.is(tcp.originalDst, null);

  t.like(answer(await probe(topo.pod, { kind: 'udp', host: topo.internetIp, port: 7001, send: 'hello' }, { uid: 1000 })), { kind: 'udp', payload: 'hello' });

  const whoami = await execInNetns(topo.pod, 'id', ['-u'], { uid: 1000 });
  t.is(whoami.stdout.trim(), '1000');
});

e2e('a long-running node process runs as the given uid and is waited for until it listens', async (t) => {
  const ns = await createNetns(t, PREFIX);
  const server = spawnNodeInNetns(t, ns, ['-e', "require('net').createServer((s) => s.end(String(process.getuid()))).listen(15001, () => console.log('up'))"], { uid: 1337 });
  await waitForListen(ns, 15001);
  t.like(await probe(ns, { kind: 'tcp', host: '127.0.0.1', port: 15001 }), { ok: true, data: '1337' });
  t.is(await server.waitForLine((l) => l === 'up'), 'up');
  await server.stop();
  t.is((await server.exited).signal, 'SIGTERM');
});

e2e('a closed port is a result, not an exception', async (t) => {
  const ns = await createNetns(t, PREFIX);
  const r = await probe(ns, { kind: 'tcp', host: '127.0.0.1', port: 9 });
  t.like(r, { ok: false, code: 'ECONNREFUSED' });
  const u = await probe(ns, { kind: 'udp', host: '127.0.0.1', port: 9 });
  t.like(u, { ok: false, code: 'ECONNREFUSED' });
});
