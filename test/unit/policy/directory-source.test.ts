import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { directorySource, type ConfigEvent, type ConfigSource } from '../../../src/policy/index.ts';

const SE = (name: string, port = 443): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: default }
spec:
  hosts: [${name}.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: ${port}, name: p, protocol: TLS }]
`;

const logger = pino({ level: 'silent' });

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-source-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function started(t: { teardown: (fn: () => Promise<void>) => void }, source: ConfigSource): { source: ConfigSource; events: ConfigEvent[] } {
  const events: ConfigEvent[] = [];
  source.subscribe((e) => events.push(e));
  t.teardown(() => source.close());
  return { source, events };
}

const allows = (source: ConfigSource, host: string): boolean | undefined => source.current()?.policy.decide({ host, port: 443, sourceNamespace: 'default' }).allow;

test('loads at start, reloads only on change, refuses a bad change whole and keeps the last good snapshot', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a.yaml'), SE('a'));
  const { source, events } = started(t, directorySource({ paths: [dir], logger, watch: false, intervalMs: 0 }));
  await source.start();
  t.like(source.current(), { version: 1, files: [join(dir, 'a.yaml')], summary: { serviceEntries: 1 } });
  t.is(source.current()?.config.serviceEntries[0]?.id, 'ServiceEntry/default/a');
  t.true(allows(source, 'a.example.com'));
  t.is(await source.reload(), 'unchanged');
  t.is(await source.reload(true), 'loaded');
  t.is(source.current()?.version, 2);

  await writeFile(join(dir, 'b.yaml'), SE('b', 70000));
  t.is(await source.reload(), 'failed');
  t.is(source.current()?.version, 2, 'the last good snapshot stays');
  t.false(allows(source, 'b.example.com'));
  const rejected = events.at(-1);
  t.is(rejected?.type, 'rejected');
  t.regex(rejected?.type === 'rejected' ? rejected.problems[0]! : '', /b\.yaml:\d+:\d+: ServiceEntry\/default\/b: spec\.ports\[0\]\.number/);
  t.like(source.status(), { source: `directory ${dir}`, reloads: 2, failures: 1, current: { version: 2 } });
  t.is(await source.reload(), 'unchanged', 'a refused config is reported once, not at every check');

  await writeFile(join(dir, 'b.yaml'), SE('b'));
  t.is(await source.reload(), 'loaded');
  t.true(allows(source, 'b.example.com'));
  t.like(source.status(), { reloads: 3, failures: 1, lastError: null });
  t.deepEqual(
    events.map((e) => e.type),
    ['applied', 'applied', 'rejected', 'applied'],
  );
  t.false('policy' in (source.status().current ?? {}), 'the status carries no compiled policy');
});

test('a bad config at start leaves no snapshot (the caller fails closed) and start still resolves', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a.yaml'), 'kind: ServiceEntry\nmetadata: { name: [broken\n');
  const { source } = started(t, directorySource({ paths: [dir], logger, watch: false, intervalMs: 0 }));
  await source.start();
  t.is(source.current(), undefined);
  t.is(source.status().failures, 1);
  t.true((source.status().lastError?.length ?? 0) > 0);
});

test('several paths, a file among them, are one allowlist; concurrent checks share one load', async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t);
  await writeFile(join(dir, 'a.yaml'), SE('a'));
  await writeFile(join(other, 'extra.conf'), SE('c'));
  const { source } = started(t, directorySource({ paths: [dir, join(other, 'extra.conf')], logger, watch: false, intervalMs: 0 }));
  await source.start();
  t.true(allows(source, 'a.example.com'));
  t.true(allows(source, 'c.example.com'), 'a file named explicitly is read whatever its extension');
  await writeFile(join(other, 'extra.conf'), SE('d'));
  const outcomes = await Promise.all([source.reload(), source.reload(), source.reload()]);
  t.deepEqual(outcomes, ['loaded', 'loaded', 'loaded']);
  t.is(source.current()?.version, 2, 'one load for the three');
  t.true(allows(source, 'd.example.com'));
});

test('a change is seen by the watcher without any call, and by the periodic check without a watcher', async (t) => {
  for (const [watch, intervalMs] of [
    [true, 0],
    [false, 20],
  ] as const) {
    const dir = await tempDir(t);
    await writeFile(join(dir, 'a.yaml'), SE('a'));
    const { source } = started(t, directorySource({ paths: [dir], logger, watch, intervalMs, debounceMs: 10 }));
    await source.start();
    const applied = new Promise<number>((resolve) => source.subscribe((e) => e.type === 'applied' && resolve(e.snapshot.version)));
    await writeFile(join(dir, 'b.yaml'), SE('b'));
    t.is(await applied, 2, watch ? 'watcher' : 'periodic check');
    t.true(allows(source, 'b.example.com'));
  }
});
