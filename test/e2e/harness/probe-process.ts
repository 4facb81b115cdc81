/**
 * Child process run by probe.ts (usually as an application UID in the pod
 * namespace): one TCP or UDP exchange described by argv[2] (JSON ProbeSpec).
 * Prints one JSON ProbeResult line and exits 0 whatever happened, so the
 * outcome is data for the test, not an exit code to interpret.
 */
import { createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { ProbeResult, ProbeSpec } from './probe.ts';

const spec = JSON.parse(process.argv[2] ?? '{}') as ProbeSpec;

function done(result: ProbeResult): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

function failed(err: NodeJS.ErrnoException): never {
  done({ ok: false, code: err.code ?? 'ERROR', message: err.message });
}

setTimeout(() => done({ ok: false, code: 'ETIMEDOUT', message: `no answer within ${spec.timeoutMs ?? 5000} ms` }), spec.timeoutMs ?? 5000).unref();

if (spec.kind === 'tcp') {
  let data = '';
  const socket = createConnection({ host: spec.host, port: spec.port });
  socket.setEncoding('utf8');
  socket.on('connect', () => socket.end(spec.send ?? ''));
  socket.on('data', (d: string) => (data += d));
  socket.on('error', failed);
  socket.on('close', (hadError) => {
    if (!hadError) done({ ok: true, data });
  });
} else {
  // A connected socket, so an ICMP port unreachable comes back as ECONNREFUSED.
  const socket = createSocket(isIPv6(spec.host) ? 'udp6' : 'udp4');
  socket.on('error', failed);
  socket.on('message', (msg) => done({ ok: true, data: msg.toString('utf8') }));
  socket.connect(spec.port, spec.host, () => {
    socket.send(spec.send ?? 'probe', (err) => {
      if (err) failed(err);
    });
  });
}
