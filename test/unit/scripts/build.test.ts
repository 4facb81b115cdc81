/**
 * The production bundle (scripts/build.ts) as production runs it: plain `node dist/...mjs`,
 * no TypeScript loader. One build for the file (a private one, so that a concurrent
 * `npm run build` or benchmark cannot pull it away), then the agent and egressctl from it.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { getSystemErrorName, promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { buildPrivateDist, PACKAGE_ROOT } from '../../../scripts/build.ts';
import { AGENT_NODE_FLAGS } from '../../../src/agent/node-flags.ts';
import { JsonLines } from '../../helpers/json-lines.ts';
import { echoServer, proxyConnect, serviceEntry, tempDir } from '../agent/_harness.ts';

const run = promisify(execFile);

let entry: Promise<string> | undefined;
/** Built once, on first use, removed when the file's tests end. */
function built(): Promise<string> {
  return (entry ??= buildPrivateDist());
}
test.after.always(async () => {
  if (entry !== undefined) rmSync(dirname(await entry), { recursive: true, force: true });
});

test('the agent loads nothing from node_modules, and no TypeScript loader', async (t) => {
  const out = dirname(await built());
  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as Metafile;
  const outputs = Object.entries(meta.outputs);
  const start = outputs.find(([, o]) => 'src/agent/command.ts' in o.inputs);
  if (start === undefined) return t.fail('no output holds src/agent/command.ts');
  // What `egressd agent` loads: its command's chunk and everything that imports statically.
  const loaded = new Set<string>();
  const external = new Set<string>();
  const visit = (file: string): void => {
    if (loaded.has(file)) return;
    loaded.add(file);
    for (const i of meta.outputs[file]!.imports) {
      if (i.kind !== 'import-statement') continue;
      if (i.external) external.add(i.path);
      else visit(i.path);
    }
  };
  visit(start[0]);
  t.deepEqual([...external].filter((m) => !isBuiltin(m)), []);
  t.false(Object.keys(meta.inputs).some((input) => input.includes('node_modules/tsx/')));
});

test("the bundle's chunks find the native addons through the package root, and they work", async (t) => {
  // Where the bundled agent's chunk asks from (dist/chunks/ in an image, dist/run-<pid>/chunks/ here).
  const fromChunk = createRequire(join(dirname(await built()), 'chunks', 'original-dst.mjs'));
  const addon = fromChunk('#original-dst-addon') as { originalDst: (fd: number, level: number, buffer: Buffer) => number };
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  const socket = await accepted;
  t.teardown(() => socket.destroy());
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  // Not redirected: conntrack has no NAT for it (or is not loaded here).
  t.regex(getSystemErrorName(addon.originalDst(fd, 0, Buffer.alloc(16))), /^(ENOENT|ENOPROTOOPT)$/);
  t.throws(() => addon.originalDst(fd, 0, 'not a buffer' as unknown as Buffer), { instanceOf: TypeError });
  const relay = fromChunk('#relay-addon') as { guardNew(host: string): object; guardFeed(guard: object, bytes: Buffer): { refused?: string } };
  t.regex(relay.guardFeed(relay.guardNew('api.example.test'), Buffer.from('GET / HTTP/1.1\r\nHost: evil.example.test\r\n\r\n')).refused ?? '', /names host "evil\.example\.test"/);
});

test('egressctl from the bundle validates like the sources: the broken samples and their golden stderr', async (t) => {
  const egressctl = join(dirname(await built()), 'egressctl.mjs');
  const failed = await run(process.execPath, [egressctl, 'validate', 'test/fixtures/invalid'], { cwd: PACKAGE_ROOT }).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );
  t.is(failed?.code, 1);
  t.is(failed?.stderr, readFileSync(join(PACKAGE_ROOT, 'test/fixtures/invalid/expected-stderr.txt'), 'utf8'));
  const ok = await run(process.execPath, [egressctl, 'validate', 'deploy/examples'], { cwd: PACKAGE_ROOT });
  t.regex(ok.stdout, /^valid: /);
});

test('the agent from the bundle with its production Node flags: ready, allows the listed destination and refuses another', async (t) => {
  const server = await echoServer(t);
  const config = join(tempDir(t), 'config');
  mkdirSync(config);
  writeFileSync(join(config, 'api.yaml'), serviceEntry('api', ['api.example.test'], [{ number: server.port, protocol: 'TCP' }]));
  const child = spawn(
    process.execPath,
    [...AGENT_NODE_FLAGS, await built(), 'agent', '--config-dir', config, '--dns=false', '--outbound-port', '0', '--proxy-port', '0', '--admin-port', '0', '--resolve', `api.example.test:${server.port}:127.0.0.1`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => void child.kill('SIGKILL'));
  const logs = new JsonLines();
  child.stderr.pipe(logs);
  const port = async (listener: string): Promise<number> => (await logs.find((l) => l.msg === 'listening' && l.listener === listener, `the ${listener} listener`)).port as number;
  const [proxyPort, adminPort] = [await port('proxy'), await port('admin')];
  t.is((await fetch(`http://127.0.0.1:${adminPort}/healthz/ready`)).status, 200);
  const allowed = await proxyConnect(proxyPort, `api.example.test:${server.port}`);
  allowed.socket.destroy();
  t.is(allowed.status, 200);
  const denied = await proxyConnect(proxyPort, 'elsewhere.example.test:443');
  denied.socket.destroy();
  t.is(denied.status, 403);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  t.is(await exited, 0);
});
