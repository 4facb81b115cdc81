import type { Socket } from 'node:net';

/**
 * How a refusal reaches the client, in the protocol it spoke: an HTTP 403
 * it can read, a TLS alert its library reports as "access denied", or a TCP
 * reset. After answering, whatever the client still sends is read and
 * discarded, so that unread bytes do not turn our close into a reset that
 * would destroy the answer before the client reads it.
 */

/** TLS alert descriptions (RFC 8446 6.2). */
export const TLS_ALERT = { accessDenied: 49, decodeError: 50 } as const;

/** How long a refused client has to read the answer and close before we close for it. */
const LINGER_MS = 5000;

export function refuseHttp(socket: Socket, status: 400 | 403 | 502 | 503, reason: string, body: string): number {
  const text = { 400: 'Bad Request', 403: 'Forbidden', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status];
  const payload = Buffer.from(body);
  const head =
    `HTTP/1.1 ${status} ${text}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${payload.length}\r\n` +
    `X-Egressd-Reason: ${reason}\r\n` +
    'Connection: close\r\n\r\n';
  answerAndClose(socket, Buffer.concat([Buffer.from(head), payload]));
  return status;
}

/** A fatal alert record. The record version 3.3 is what every TLS 1.2 and 1.3 stack accepts before a ServerHello. */
export function refuseTls(socket: Socket, description: number): void {
  answerAndClose(socket, Buffer.from([21, 3, 3, 0, 2, 2, description]));
}

/** A TCP reset (for a gateway tunnel, its RST_STREAM): the peer learns the stream did not complete, where a FIN would look like success. */
export function refuseTcp(socket: { readonly destroyed: boolean; resetAndDestroy(): unknown; destroy(): unknown }): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function answerAndClose(socket: Socket, bytes: Buffer): void {
  if (socket.destroyed) return;
  socket.on('data', () => undefined);
  socket.resume();
  socket.setTimeout(LINGER_MS, () => socket.destroy());
  socket.end(bytes);
}
