import type { Readable } from 'node:stream';
import { parseClientHello } from '../core/client-hello.ts';
import { normalizeHost } from '../core/net.ts';

/**
 * The SNI check on the bytes themselves. The agent's `egressd-sni` header is
 * a claim; what the destination will read is the ClientHello in the stream.
 * A `tls` tunnel must start with a valid ClientHello whose server name, when
 * it has one, is the tunnel's host: otherwise a modified agent could name an
 * allowed host in the headers and another in the handshake (domain fronting
 * past the gateway). The bytes read are kept, to be replayed upstream.
 */

export type HelloCheck =
  | { ok: true; buffered: Buffer }
  | { ok: false; reason: 'malformed_client_hello' | 'host_mismatch'; detail: string }
  /** The agent reset the tunnel first: its client went away, nothing to refuse. */
  | { ok: false; reason: 'cancelled'; detail: string };

export function checkClientHello(stream: Readable, host: string, timeoutMs: number): Promise<HelloCheck> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    const finish = (result: HelloCheck): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('aborted', onAborted);
      stream.pause();
      resolve(result);
    };
    const judge = (final: boolean): void => {
      const hello = parseClientHello(buffered);
      if (hello.status === 'complete') {
        if (hello.sni === null || normalizeHost(hello.sni) === host) finish({ ok: true, buffered });
        else finish({ ok: false, reason: 'host_mismatch', detail: `ClientHello SNI ${hello.sni} is not the tunnel's host ${host}` });
      } else if (hello.status === 'malformed' || hello.status === 'not_tls') {
        finish({ ok: false, reason: 'malformed_client_hello', detail: hello.status === 'not_tls' ? 'the tls tunnel does not start with a TLS handshake' : `malformed ClientHello: ${hello.reason}` });
      } else if (final) {
        finish({ ok: false, reason: 'malformed_client_hello', detail: buffered.length === 0 ? 'no ClientHello before the tunnel ended or timed out' : `ClientHello incomplete after ${buffered.length} bytes` });
      }
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      judge(false);
    };
    const onEnd = (): void => judge(true);
    // An HTTP/2 stream the agent reset (its client went away) says 'aborted' before it ends.
    const onAborted = (): void => finish({ ok: false, reason: 'cancelled', detail: 'tunnel: reset by the agent before a ClientHello' });
    const timer = setTimeout(() => judge(true), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('aborted', onAborted);
  });
}
