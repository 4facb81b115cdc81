/**
 * What an HTTP/3 client tries first: a QUIC Initial to UDP 443. Run by the
 * transparent demo as the application's UID in the pod namespace with
 * argv[2] = host, argv[3] = port. Connected socket, so a rejection comes back
 * as an error: EPERM from a local REJECT rule, ECONNREFUSED from an ICMP
 * unreachable. Prints one JSON line (UdpAttempt) and exits 0 whatever happened.
 */
import { createSocket } from 'node:dgram';
import type { UdpAttempt } from './pod-app.ts';

const [host = '', port = '443'] = process.argv.slice(2);
const WAIT_MS = 5000;

function done(result: UdpAttempt): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

setTimeout(() => done({ outcome: 'no_answer', detail: `nothing within ${WAIT_MS} ms` }), WAIT_MS).unref();
const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
socket.on('error', (err: NodeJS.ErrnoException) => done({ outcome: 'error', detail: `${err.code ?? 'ERROR'}: ${err.message}`, code: err.code ?? 'ERROR' }));
socket.on('message', (msg) => done({ outcome: 'answered', detail: msg.toString('utf8').trim() }));
// First byte 0xc0: a QUIC long header (Initial), padded as clients pad it.
const initial = Buffer.alloc(1200);
initial[0] = 0xc0;
socket.connect(Number(port), host, () => socket.send(initial));
