import { constants as h2, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

/**
 * Copies bytes between a tunnel stream and the destination socket, with
 * backpressure, carrying half-closes across (END_STREAM <-> FIN) and resets
 * (RST_STREAM CONNECT_ERROR <-> TCP RST, RFC 9113 8.5), giving up after
 * `idleTimeoutMs` without traffic. Resolves when both sides are closed.
 */

export interface SpliceResult {
  bytesSent: number;
  bytesReceived: number;
  error?: string;
}

export function spliceTunnel(stream: ServerHttp2Stream, upstream: Socket, options: { replay?: Buffer; idleTimeoutMs: number }): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let error: string | undefined;
    let open = 2;
    const closed = (): void => {
      if (--open > 0) return;
      resolve({ bytesSent: upstream.bytesWritten, bytesReceived: upstream.bytesRead, ...(error === undefined ? {} : { error }) });
    };
    const fail = (message: string): void => {
      error ??= message;
      if (!upstream.destroyed) upstream.resetAndDestroy();
      if (!stream.destroyed) stream.close(h2.NGHTTP2_CONNECT_ERROR);
    };
    upstream.once('close', () => {
      if (!(upstream.readableEnded && upstream.writableFinished)) fail('upstream: closed before the end of the stream');
      closed();
    });
    stream.once('close', () => {
      if (stream.rstCode !== undefined && stream.rstCode !== h2.NGHTTP2_NO_ERROR) fail(`tunnel: reset by the agent (code ${stream.rstCode})`);
      else if (!upstream.writableEnded) upstream.end();
      closed();
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => fail(`upstream: ${err.code ?? err.message}`));
    stream.on('error', (err: NodeJS.ErrnoException) => fail(`tunnel: ${err.code ?? err.message}`));
    upstream.setTimeout(options.idleTimeoutMs, () => fail(`idle for ${options.idleTimeoutMs} ms`));
    if (options.replay && options.replay.length > 0) upstream.write(options.replay);
    stream.pipe(upstream);
    upstream.pipe(stream);
  });
}
