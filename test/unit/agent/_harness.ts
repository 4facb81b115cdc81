/**
 * What the agent tests share: a real agent started in-process on loopback
 * (every listener on port 0), a real allowlist directory, real servers to
 * reach, and the audit records and logs the agent writes, parsed as objects.
 */
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import pino from 'pino';
import type { AuditRecord } from '../../../src/core/audit.ts';
import { startAgent, type AgentHandle } from '../../../src/agent/agent.ts';
import { agentConfig, type AgentConfig } from '../../../src/agent/agent-config.ts';
import type { OriginalDestination } from '../../../src/agent/outbound.ts';
import { JsonLines } from '../../helpers/json-lines.ts';

const WAIT_MS = 30_000;

/** Polls `check` until it returns a value, for state that emits no event (files, HTTP endpoints). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export function tempDir(t: ExecutionContext, prefix = 'egressd-agent-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A ServiceEntry exported everywhere, for `host` on `ports`: STATIC on its addresses when it has some, else DNS, unless `resolution` says. */
export function serviceEntry(
  name: string,
  hosts: string[],
  ports: { number: number; protocol: string }[],
  extra: { addresses?: string[]; namespace?: string; resolution?: 'NONE' | 'DNS' | 'STATIC' | 'DNS_ROUND_ROBIN'; endpoints?: string[] } = {},
): string {
  const resolution = extra.resolution ?? (extra.addresses ? 'STATIC' : 'DNS');
  const endpoints = extra.endpoints ?? (resolution === 'STATIC' ? (extra.addresses ?? []).map((a) => a.replace(/\/\d+$/, '')) : []);
  return [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    `  name: ${name}`,
    `  namespace: ${extra.namespace ?? 'default'}`,
    'spec:',
    `  hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]`,
    ...(extra.addresses ? [`  addresses: [${extra.addresses.map((a) => JSON.stringify(a)).join(', ')}]`] : []),
    '  location: MESH_EXTERNAL',
    `  resolution: ${resolution}`,
    '  exportTo: ["*"]',
    '  ports:',
    ...ports.flatMap((p) => [`    - number: ${p.number}`, `      name: p-${p.number}`, `      protocol: ${p.protocol}`]),
    ...(endpoints.length > 0 ? ['  endpoints:', ...endpoints.map((a) => `    - address: ${JSON.stringify(a)}`)] : []),
    '',
  ].join('\n');
}

export interface TestAgent {
  handle: AgentHandle;
  audit: JsonLines<AuditRecord>;
  logs: JsonLines;
  configDir: string;
  outboundPort: number;
  proxyPort: number;
  adminPort: number;
}

export async function startTestAgent(
  t: ExecutionContext,
  options: { files?: Record<string, string>; originalDestination?: OriginalDestination; config?: Partial<AgentConfig> } = {},
): Promise<TestAgent> {
  const configDir = tempDir(t);
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(configDir, name), text);
  const audit = new JsonLines<AuditRecord>();
  const logs = new JsonLines();
  const handle = await startAgent(
    agentConfig({
      configDir,
      outboundPort: 0,
      outboundBind: ['127.0.0.1'],
      proxyPort: 0,
      adminPort: 0,
      auditStdout: false,
      // Generous: a client slowed by a loaded machine must still be judged by its ClientHello, not its IP.
      peekTimeoutMs: 3000,
      reloadIntervalMs: 200,
      ...options.config,
    }),
    {
      logger: pino({ level: 'debug' }, logs),
      auditDestination: audit,
      ...(options.originalDestination ? { originalDestination: options.originalDestination } : {}),
    },
  );
  t.teardown(() => handle.close());
  return {
    handle,
    audit,
    logs,
    configDir,
    outboundPort: handle.addresses.outbound[0]!.port,
    proxyPort: handle.addresses.proxy.port,
    adminPort: handle.addresses.admin.port,
  };
}

let certificate: { key: string; cert: string; certFile: string } | undefined;

/** A self-signed certificate for the test names, made once per test process with openssl. */
export function testCertificate(): { key: string; cert: string; certFile: string } {
  if (certificate) return certificate;
  const dir = mkdtempSync(join(tmpdir(), 'egressd-cert-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=api.example.test',
    '-addext', 'subjectAltName=DNS:api.example.test,DNS:other.example.test,DNS:denied.example.test',
  ], { stdio: 'ignore' });
  certificate = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), certFile: join(dir, 'cert.pem') };
  return certificate;
}

/** Listens on loopback; teardown cuts open connections (a half-open TLS socket before its handshake would hold close() forever). */
async function listening(t: ExecutionContext, server: net.Server, host = '127.0.0.1', port = 0): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

/** TLS server answering each chunk with `<greeting> <servername> <alpn>: <chunk>` (greeting `hello`); records what it received. */
export async function tlsEchoServer(t: ExecutionContext, at: { host?: string; port?: number; greeting?: string } = {}): Promise<{ port: number; received: Buffer[] }> {
  const { key, cert } = testCertificate();
  const received: Buffer[] = [];
  const server = tls.createServer({ key, cert, ALPNProtocols: ['h2', 'http/1.1'], allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      socket.write(`${at.greeting ?? 'hello'} ${socket.servername} ${socket.alpnProtocol}: ${chunk.toString()}`);
    });
    socket.on('end', () => socket.end());
  });
  return { port: await listening(t, server, at.host, at.port), received };
}

function answerWithRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body: Buffer.concat(chunks).toString() }));
  });
}

/** Plain HTTP server answering with what it saw. */
export async function httpServer(t: ExecutionContext): Promise<{ port: number }> {
  return { port: await listening(t, http.createServer(answerWithRequest)) };
}

/** The same over TLS, with the test certificate. */
export async function httpsServer(t: ExecutionContext): Promise<{ port: number }> {
  const { key, cert } = testCertificate();
  return { port: await listening(t, https.createServer({ key, cert }, answerWithRequest)) };
}

/** TCP echo that ends when the client ends (half-close); `banner` is sent first, as SMTP or MySQL servers do. */
export async function echoServer(t: ExecutionContext, banner?: string): Promise<{ port: number }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => undefined);
    if (banner !== undefined) socket.write(banner);
    socket.pipe(socket);
  });
  return { port: await listening(t, server) };
}

/** Sends CONNECT through the explicit proxy; the socket once the tunnel is up, else the refusal. */
export function proxyConnect(proxyPort: number, target: string): Promise<{ status: number; socket: net.Socket; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target });
    req.on('connect', (res, socket, head) => {
      if (res.statusCode === 200) {
        if (head.length > 0) socket.unshift(head);
        resolve({ status: 200, socket, body: '', headers: res.headers });
        return;
      }
      let body = head.toString();
      socket.on('data', (c: Buffer) => (body += c.toString()));
      socket.on('end', () => resolve({ status: res.statusCode ?? 0, socket, body, headers: res.headers }));
      socket.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A TLS session over `socket` (or to 127.0.0.1:port), sending `message` and reading until the server ends. */
export function tlsExchange(options: { socket?: net.Socket; host?: string; port?: number; servername: string; message: string }): Promise<{ reply: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const { cert } = testCertificate();
    const client = tls.connect({
      ...(options.socket ? { socket: options.socket } : { host: options.host ?? '127.0.0.1', port: options.port! }),
      servername: options.servername,
      ca: cert,
      ALPNProtocols: ['http/1.1'],
    });
    let reply = '';
    client.on('secureConnect', () => client.end(options.message));
    client.on('data', (c: Buffer) => (reply += c.toString()));
    client.on('end', () => resolve({ reply, alpn: client.alpnProtocol ?? false }));
    client.on('error', reject);
  });
}

/** Raw exchange over TCP: writes `data`, half-closes (unless `end: false`), reads until the other side closes. */
export function tcpExchange(port: number, data: Buffer | string, options: { end?: boolean } = {}): Promise<{ reply: Buffer; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => {
      socket.write(data);
      if (options.end ?? true) socket.end();
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => socket.end());
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ reply: Buffer.concat(chunks), error }));
    socket.on('close', () => resolve({ reply: Buffer.concat(chunks) }));
  });
}

export async function adminGet(agent: TestAgent, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${agent.adminPort}${path}`);
  return { status: res.status, body: await res.text() };
}
