import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { errorMessage } from '../core/errors.ts';
import { formatHostPort, parseHostPort } from '../core/net.ts';
import type { ConnectionRecord } from './connection-record.ts';
import { decide, type NamedHost, type Verdict } from './decide.ts';
import { denialMessage } from './denial-message.ts';
import { auditPath, hostOf } from '../core/http1-request-head.ts';
import { headerIs, headerTokens } from '../core/http1-header-lines.ts';
import { connected, decideSniffed, forward, openRecord, planRoute, refusalStatus, refuseSniffed, routeTo, whenClosed, type Pipeline } from './pipeline.ts';
import { refuseHttp } from './refuse.ts';
import { sniff } from './sniff.ts';
import type { UpstreamSocket } from './tunnel-socket.ts';

/**
 * The explicit proxy (HTTPS_PROXY=http://127.0.0.1:15080) for environments
 * without iptables: `CONNECT host:port` tunnels and absolute-URI requests
 * (`GET http://host/path`), under the same decisions and audit as the
 * transparent listener. Node's HTTP server parses the requests; one request
 * per connection (we answer `Connection: close`), so that each connection
 * has one destination, one decision and one audit record.
 */

const USAGE = 'egressd explicit proxy: send "CONNECT host:port" or an absolute http:// URI (GET http://host/path).\n';
/** Connection-level headers (RFC 9110 7.6.1) that a proxy must not forward. */
const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

interface Connection {
  record: ConnectionRecord;
  /** A request took over the connection and will finish the record itself. */
  claimed: boolean;
}

export function createExplicitProxy(pipeline: Pipeline): http.Server {
  const server = http.createServer();
  const connections = new WeakMap<Socket, Connection>();
  server.on('connection', (socket: Socket) => {
    const conn: Connection = { record: openRecord(pipeline, 'proxy', socket), claimed: false };
    connections.set(socket, conn);
    socket.once('close', () => {
      if (conn.claimed) return;
      conn.record.refused('bad_request', 'the connection closed before a request');
      conn.record.finish();
    });
  });
  const claim = (socket: Socket): ConnectionRecord | undefined => {
    const conn = connections.get(socket);
    if (!conn || conn.claimed) return undefined;
    conn.claimed = true;
    return conn.record;
  };
  server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const record = claim(socket);
    // A CONNECT after another request on the same connection: we said Connection: close.
    if (!record) socket.destroy();
    else void finishAfter(pipeline, record, socket, handleConnect(pipeline, record, req, socket, head));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const record = claim(req.socket);
    // A request pipelined after the first gets no answer: the first one's Connection: close ends the connection.
    if (!record) req.resume();
    else void finishAfter(pipeline, record, req.socket, handleForward(pipeline, record, req, res));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const conn = connections.get(socket);
    conn?.record.refused('bad_request', `invalid HTTP request: ${err.code ?? err.message}`);
    if (socket.writable && err.code !== 'ECONNRESET') refuseHttp(socket, 400, 'bad_request', USAGE);
    else socket.destroy();
  });
  return server;
}

async function finishAfter(pipeline: Pipeline, record: ConnectionRecord, socket: Socket, work: Promise<void>): Promise<void> {
  try {
    await work;
  } catch (err) {
    pipeline.logger.error({ err }, 'proxy connection failed unexpectedly');
    record.error(errorMessage(err));
    socket.destroy();
  } finally {
    await whenClosed(socket);
    record.finish();
  }
}

/**
 * CONNECT host:port: decide on the host, connect, answer 200, then check what
 * the client says inside the tunnel. A route that needs the client's first
 * bytes (the gateway's) connects after them: the 200 comes first, and a
 * refusal then reaches the client in the protocol it speaks inside.
 */
async function handleConnect(pipeline: Pipeline, record: ConnectionRecord, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  record.protocol('http');
  record.http({ method: 'CONNECT', path: req.url ?? null });
  let target: { host: string; port: number };
  try {
    target = parseHostPort(req.url ?? '');
  } catch (err) {
    record.refused('bad_request', errorMessage(err));
    record.http({ status: refuseHttp(socket, 400, 'bad_request', USAGE) });
    return;
  }
  const names: NamedHost[] = [{ source: 'connect', name: target.host }];
  const address = isIP(target.host) ? target.host : undefined;
  const facts = { names, port: target.port, ...(address === undefined ? {} : { address }) };
  const verdict = decide(pipeline.policy(), facts, pipeline.identity);
  record.verdict(verdict, target.port);
  if (!verdict.allow) {
    record.http({ status: refuseHttp(socket, 403, verdict.reason, denial(pipeline, verdict, target.port)) });
    return;
  }
  const first = pipeline.route.connectsAfterSniff
    ? undefined
    : await dial(pipeline, record, verdict, target.port, (status, reason, body) => record.http({ status: refuseHttp(socket, status, reason, body) }));
  if (!pipeline.route.connectsAfterSniff && !first) return;
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  record.http({ status: 200 });
  const sniffed = await sniff(socket, { peekTimeoutMs: pipeline.peekTimeoutMs, sniffTimeoutMs: pipeline.sniffTimeoutMs, initial: head });
  const inside = decideSniffed(pipeline, record, sniffed, facts);
  if (!inside.allow || sniffed.kind === 'aborted') {
    first?.destroy();
    await refuseSniffed(pipeline, record, socket, sniffed, inside, target.port);
    return;
  }
  if (first) {
    await connected(pipeline, record, socket, first, sniffed);
    return;
  }
  const { target: routed } = await planRoute(pipeline, record, inside, { host: inside.host, port: target.port });
  await forward(pipeline, record, socket, sniffed, routed);
}

/** GET http://host/path: decide on the URI host (which every Host header must match), then relay one request. */
async function handleForward(pipeline: Pipeline, record: ConnectionRecord, req: IncomingMessage, res: ServerResponse): Promise<void> {
  record.protocol('http');
  record.http({ method: req.method ?? null, path: auditPath(req.url ?? '') });
  const url = URL.canParse(req.url ?? '') ? new URL(req.url!) : undefined;
  if (url?.protocol !== 'http:' || url.hostname === '') {
    record.refused('bad_request', `not an absolute http:// URI: ${(req.url ?? '').slice(0, 200)}`);
    respond(record, res, 400, 'bad_request', USAGE);
    return;
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? 80 : Number(url.port);
  const names: NamedHost[] = [{ source: 'http', name: host }];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === 'host') names.push({ source: 'http', name: hostOf(req.rawHeaders[i + 1]!) ?? req.rawHeaders[i + 1]! });
  }
  const address = isIP(host) ? host : undefined;
  const verdict = decide(pipeline.policy(), { names, port, protocol: 'HTTP', ...(address === undefined ? {} : { address }) }, pipeline.identity);
  record.verdict(verdict, port);
  if (!verdict.allow) {
    respond(record, res, 403, verdict.reason, denial(pipeline, verdict, port));
    return;
  }
  const upstream = await dial(pipeline, record, verdict, port, (status, reason, body) => respond(record, res, status, reason, body), { protocol: 'http', httpHost: url.host });
  if (!upstream) return;
  upstream.setTimeout(pipeline.idleTimeoutMs, () => upstream.destroy(new Error(`idle for ${pipeline.idleTimeoutMs} ms`)));
  req.socket.once('close', () => {
    if (!res.writableFinished) record.error('client: closed before the response was complete');
    upstream.destroy();
  });
  const headers = forwardable(req.rawHeaders);
  // HTTP/1.0 clients may leave Host out; the origin server needs it.
  if (names.length === 1) headers.push('Host', url.host);
  const outgoing = http.request({
    createConnection: () => upstream,
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers: [...headers, 'Connection', 'close'],
    setHost: false,
  });
  outgoing.on('response', (incoming) => {
    record.http({ status: incoming.statusCode ?? null });
    res.writeHead(incoming.statusCode ?? 502, incoming.statusMessage, [...forwardable(incoming.rawHeaders), 'Connection', 'close']);
    incoming.pipe(res);
    incoming.on('error', () => res.destroy());
  });
  outgoing.on('error', (err: NodeJS.ErrnoException) => {
    record.error(`upstream: ${err.code ?? err.message}`);
    if (!res.headersSent) respond(record, res, 502, 'upstream_error', `egressd: ${formatHostPort(verdict.host, port)}: ${err.code ?? err.message}\n`);
    else res.destroy();
  });
  req.pipe(outgoing);
  await Promise.all([whenClosed(upstream), whenClosed(req.socket)]);
  record.bytes(upstream.bytesWritten, upstream.bytesRead);
}

/** Plans and connects through the route; on failure answers with `fail` and returns undefined. */
async function dial(
  pipeline: Pipeline,
  record: ConnectionRecord,
  verdict: Verdict,
  port: number,
  fail: (status: 403 | 502 | 503, reason: string, body: string) => void,
  wire: { protocol?: 'http'; httpHost?: string } = {},
): Promise<UpstreamSocket | undefined> {
  // Nothing was dialled yet, so there is no passthrough IP to verify: the plan is where the rule says to go.
  const { target } = await planRoute(pipeline, record, verdict, { host: verdict.host, port });
  const result = await routeTo(pipeline, record, { ...target, ...wire });
  if (result.ok) return result.socket;
  const [status, reason] = refusalStatus(result);
  fail(status, reason, `egressd: ${result.detail}\n`);
  return undefined;
}

function respond(record: ConnectionRecord, res: ServerResponse, status: number, reason: string, body: string): void {
  record.http({ status });
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Egressd-Reason': reason, Connection: 'close' });
  res.end(body);
}

function denial(pipeline: Pipeline, verdict: Verdict, port: number): string {
  return denialMessage({
    host: verdict.host,
    port,
    reason: verdict.reason,
    ...(verdict.detail === undefined ? {} : { detail: verdict.detail }),
    namespace: pipeline.identity.namespace,
    configDir: pipeline.configDir,
  });
}

/** rawHeaders minus hop-by-hop ones and those the Connection header names. */
function forwardable(raw: readonly string[]): string[] {
  const drop = new Set(HOP_BY_HOP);
  for (let i = 0; i < raw.length; i += 2) {
    if (headerIs(raw[i]!, 'connection')) for (const name of headerTokens(raw[i + 1]!)) drop.add(name);
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!drop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}
