import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { AUDIT_FIELDS, AUDIT_FLUSH_MS, createAuditSink, readAuditFile, REFUSAL_REASONS, type AuditEntry } from '../../../src/core/audit.ts';

const doc = readFileSync(new URL('../../../docs/audit-log.md', import.meta.url), 'utf8');

const ENTRY: AuditEntry = {
  time: '2026-01-02T03:04:05.678Z',
  decision: 'allow',
  reason: 'allowed_by_rule',
  rule: 'ServiceEntry/default/api',
  mode: 'REGISTRY_ONLY',
  would_deny: false,
  host: 'api.example.test',
  host_source: 'sni',
  sni: 'api.example.test',
  alpn: ['h2', 'http/1.1'],
  port: 443,
  dst: '192.0.2.10:443',
  src: '10.0.0.5:40123',
  protocol: 'tls',
  http: null,
  route: 'direct',
  namespace: 'shop',
  listener: 'outbound',
  bytes_sent: 517,
  bytes_received: 4096,
  duration_ms: 12,
  error: null,
};

function lines(): { stream: Writable; items: unknown[] } {
  const items: unknown[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') items.push(JSON.parse(line));
      done();
    },
  });
  return { stream, items };
}

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'egressd-audit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('each record is one JSON line, component first, in the file (appended) and the extra destination', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'nested', 'audit.log');
  const extra = lines();
  const first = createAuditSink({ component: 'agent', stdout: false, file, destination: extra.stream });
  first.write(ENTRY);
  await first.close();
  const second = createAuditSink({ component: 'gateway', stdout: false, file });
  second.write({ ...ENTRY, decision: 'deny', reason: 'no_matching_rule' });
  await second.close();

  const text = readFileSync(file, 'utf8');
  t.true(text.startsWith('{"component":"agent","time":'));
  const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const unknown = { identity: null, replica: null, failover: null, connection_id: null, request_id: null };
  t.deepEqual(records, [
    { component: 'agent', ...ENTRY, ...unknown },
    { component: 'gateway', ...ENTRY, decision: 'deny', reason: 'no_matching_rule', ...unknown },
  ]);
  t.deepEqual(extra.items, [records[0]]);
});

test('readAuditFile reads back what the sink wrote, nothing for a file not there yet, and leaves out a last line still being written', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'audit.log');
  t.deepEqual(await readAuditFile(file), []);
  const sink = createAuditSink({ component: 'agent', stdout: false, file });
  sink.write(ENTRY);
  await sink.close();
  writeFileSync(file, '{"component":"agent","time":', { flag: 'a' });
  const records = await readAuditFile(file);
  t.is(records.length, 1);
  t.like(records[0], { component: 'agent', ...ENTRY });
});

test('correlation fields given are kept in place; those left out are written as null', async (t) => {
  const extra = lines();
  const sink = createAuditSink({ component: 'gateway', stdout: false, destination: extra.stream });
  sink.write({ ...ENTRY, identity: 'spiffe://cluster.local/ns/shop/sa/web', connection_id: 'c-1' });
  await sink.close();
  t.like(extra.items[0], { identity: 'spiffe://cluster.local/ns/shop/sa/web', connection_id: 'c-1', replica: null, request_id: null });
});

test('AUDIT_FIELDS names exactly the fields of a record', async (t) => {
  const extra = lines();
  const sink = createAuditSink({ component: 'agent', stdout: false, destination: extra.stream });
  sink.write(ENTRY);
  await sink.close();
  t.deepEqual(Object.keys(extra.items[0] as object).sort(), Object.values(AUDIT_FIELDS).sort());
});

test('a record written after close is dropped, not an error', async (t) => {
  const extra = lines();
  const sink = createAuditSink({ component: 'agent', stdout: false, destination: extra.stream });
  await sink.close();
  t.notThrows(() => sink.write(ENTRY));
  t.is(extra.items.length, 0);
});

test('an audit log path that cannot be opened fails at creation with EGRESSD_ERR_AUDIT_LOG', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), '');
  t.throws(() => createAuditSink({ component: 'agent', stdout: false, file: join(dir, 'file', 'audit.log') }), {
    code: 'EGRESSD_ERR_AUDIT_LOG',
    message: /cannot open audit log/,
  } as never);
});

for (const field of Object.values(AUDIT_FIELDS)) {
  test(`audit field ${field} is documented in docs/audit-log.md`, (t) => {
    t.true(doc.includes(`| \`${field}\``));
  });
}

for (const reason of Object.keys(REFUSAL_REASONS)) {
  test(`refusal reason ${reason} is documented in docs/audit-log.md`, (t) => {
    t.true(doc.includes(`\`${reason}\``));
  });
}

test('the example in docs/audit-log.md is a record with every field', (t) => {
  const example = /```json\n(\{.*\})\n```/.exec(doc);
  t.truthy(example, 'a one-line JSON example');
  t.deepEqual(Object.keys(JSON.parse(example![1]!) as object).sort(), Object.values(AUDIT_FIELDS).sort());
});

test('records are written in batches: one waits no longer than the flush interval, without a close', async (t) => {
  const file = join(tempDir(t), 'audit.log');
  const sink = createAuditSink({ component: 'gateway', stdout: false, file });
  t.teardown(() => sink.close());
  sink.write(ENTRY);
  sink.write({ ...ENTRY, reason: 'no_matching_rule' });
  const deadline = Date.now() + 10_000;
  let records = await readAuditFile(file);
  while (records.length < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, AUDIT_FLUSH_MS));
    records = await readAuditFile(file);
  }
  t.deepEqual(
    records.map((r) => r.reason),
    [ENTRY.reason, 'no_matching_rule'],
  );
});

test('a process that exits without closing its sink still writes the records it had pending', async (t) => {
  const file = join(tempDir(t), 'audit.log');
  const script = `
    import { createAuditSink } from ${JSON.stringify(new URL('../../../src/core/audit.ts', import.meta.url).pathname)};
    const sink = createAuditSink({ component: 'agent', stdout: false, file: ${JSON.stringify(file)} });
    for (let i = 0; i < 3; i++) sink.write({ ...${JSON.stringify(ENTRY)}, port: i });
    process.exit(3);
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  t.is(child.status, 3, child.stderr);
  t.deepEqual(
    (await readAuditFile(file)).map((r) => r.port),
    [0, 1, 2],
  );
});
