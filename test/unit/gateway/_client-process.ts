/**
 * A tunnel client as a child process, for a network namespace: the agent's
 * side of the gateway (GatewayPool) with its certificate files, running the
 * actions in argv[2] (JSON ClientSpec) and printing one JSON line per
 * outcome (`result`, `error`), per pool event (`replica-down`, `failover`),
 * then `done`.
 */
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { EgressdError, errorMessage } from '../../../src/core/errors.ts';
import { GatewayPool } from '../../../src/tunnel/pool.ts';
import type { TunnelRequest } from '../../../src/tunnel/protocol.ts';

export interface ClientAction {
  id: string;
  request: TunnelRequest;
  /** What to do through an open tunnel: nothing, HTTPS (TLS by the client itself), or plain HTTP. */
  exchange: 'none' | 'tls-get' | 'http-get';
  path?: string;
}

export interface ClientSpec {
  addresses: string[];
  /** The agent's certificate and key; none to try without a client certificate. */
  certFile?: string;
  keyFile?: string;
  /** The mesh trust bundle (gateway certificates chain to it). */
  caFile: string;
  gatewayIdentity: string;
  /** CA of the destinations, for `tls-get`. */
  destinationCaFile?: string;
  actions?: ClientAction[];
  /** Runs `action` on `concurrency` loops until `afterDown` exchanges started after a replica went down have finished (or `max` in all). */
  load?: { action: ClientAction; concurrency: number; afterDown: number; max: number };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as ClientSpec;
const emit = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};
const context = tls.createSecureContext({
  ...(spec.certFile && spec.keyFile ? { cert: readFileSync(spec.certFile), key: readFileSync(spec.keyFile) } : {}),
  ca: readFileSync(spec.caFile),
});
const destinationCa = spec.destinationCaFile ? readFileSync(spec.destinationCaFile, 'utf8') : undefined;
const pool = new GatewayPool({ addresses: spec.addresses, secureContext: () => context, gatewayIdentities: [spec.gatewayIdentity], connectTimeoutMs: 3000, pingIntervalMs: 1000 });
let downSeen = false;
pool.on('replica-down', (e) => {
  downSeen = true;
  emit({ event: 'replica-down', replica: e.replica, error: errorMessage(e.error), retryInMs: e.retryInMs });
});
pool.on('failover', (e) => emit({ event: 'failover', from: e.from, error: errorMessage(e.error) }));

async function readAll(stream: Duplex): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

function parseResponse(text: string): { status: number; body: unknown } {
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  try {
    return { status, body: JSON.parse(body) as unknown };
  } catch {
    return { status, body };
  }
}

async function exchange(action: ClientAction, stream: Duplex): Promise<{ status: number; body: unknown } | undefined> {
  const head = `GET ${action.path ?? '/'} HTTP/1.1\r\nhost: ${action.request.host}\r\nconnection: close\r\n\r\n`;
  if (action.exchange === 'none') {
    stream.destroy();
    return undefined;
  }
  if (action.exchange === 'http-get') {
    stream.write(head);
    const text = await readAll(stream);
    stream.end();
    return parseResponse(text);
  }
  const secure = tls.connect({ socket: stream, servername: action.request.host, ...(destinationCa ? { ca: destinationCa } : {}) });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  secure.write(head);
  const text = await readAll(secure);
  // TLS over a generic Duplex does not end it: end the tunnel as an agent's splice would.
  stream.end();
  return parseResponse(text);
}

async function run(action: ClientAction, extra: Record<string, unknown> = {}): Promise<boolean> {
  try {
    const result = await pool.open(action.request);
    if (!result.ok) {
      emit({ event: 'result', id: action.id, ...extra, ok: false, status: result.status, reason: result.reason, rule: result.rule, replica: result.replica, gatewayReplica: result.gatewayReplica });
      return false;
    }
    const timer = setTimeout(() => result.stream.destroy(new Error('exchange timed out')), 10_000);
    const response = await exchange(action, result.stream).finally(() => clearTimeout(timer));
    emit({ event: 'result', id: action.id, ...extra, ok: true, decision: result.decision, reason: result.reason, replica: result.replica, gatewayReplica: result.gatewayReplica, response });
    return true;
  } catch (err) {
    emit({ event: 'error', id: action.id, ...extra, code: err instanceof EgressdError ? err.code : null, message: errorMessage(err) });
    return false;
  }
}

for (const action of spec.actions ?? []) await run(action);
if (spec.load) {
  const { action, concurrency, afterDown, max } = spec.load;
  let started = 0;
  let finishedAfterDown = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (finishedAfterDown < afterDown && started < max) {
        const n = started++;
        const startedAfterDown = downSeen;
        await run({ ...action, id: `${action.id}-${n}` }, { n, startedAfterDown });
        if (startedAfterDown) finishedAfterDown++;
      }
    }),
  );
}
emit({ event: 'done' });
await pool.close(0);
process.exit(0);
