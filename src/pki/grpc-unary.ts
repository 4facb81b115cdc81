import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { isIP } from 'node:net';
import { formatHostPort, parseHostPort } from '../core/net.ts';

/**
 * One unary gRPC call over HTTP/2 and TLS, on a session of its own, closed after the
 * answer: the gRPC protocol as github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 * writes it, for the agent's one call (CreateCertificate, every few hours), which does not
 * justify @grpc/grpc-js's ~10 MiB of memory.
 */

/** gRPC status codes, by number (doc/statuscodes.md). */
export const GRPC_STATUS_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

export const GRPC_STATUS = Object.fromEntries(GRPC_STATUS_NAMES.map((name, code) => [name, code])) as Record<(typeof GRPC_STATUS_NAMES)[number], number>;

/** A call that ended with a status other than OK: the server's, or the one the client gives a failure (UNAVAILABLE, DEADLINE_EXCEEDED...). */
export class GrpcStatusError extends Error {
  readonly code: number;
  readonly details: string;

  constructor(code: number, details: string) {
    super(`${grpcStatusName(code)}: ${details}`);
    this.name = 'GrpcStatusError';
    this.code = code;
    this.details = details;
  }
}

export function grpcStatusName(code: number): string {
  return GRPC_STATUS_NAMES[code] ?? String(code);
}

export interface UnaryCall {
  /** host:port of the server. */
  address: string;
  /** PEM roots the server's certificate must chain to. */
  ca: string;
  /** Name to verify the server's certificate against and send as SNI and :authority, when `address` does not say it. */
  serverName?: string;
  /** `/package.Service/Method`. */
  path: string;
  /** The serialized request message. */
  message: Buffer;
  /** Request metadata (header names are lowercased, as gRPC requires). */
  metadata?: Readonly<Record<string, string>>;
  deadlineMs: number;
  /** Largest response message accepted (default 4 MiB, gRPC's default). */
  maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE = 4 * 1024 * 1024;

/** HTTP statuses of a non-gRPC answer, as gRPC clients map them (doc/http-grpc-status-mapping.md). */
function statusOfHttp(httpStatus: number): number {
  if (httpStatus === 400) return GRPC_STATUS.INTERNAL;
  if (httpStatus === 401) return GRPC_STATUS.UNAUTHENTICATED;
  if (httpStatus === 403) return GRPC_STATUS.PERMISSION_DENIED;
  if (httpStatus === 404) return GRPC_STATUS.UNIMPLEMENTED;
  if ([429, 502, 503, 504].includes(httpStatus)) return GRPC_STATUS.UNAVAILABLE;
  return GRPC_STATUS.UNKNOWN;
}

/** A stream reset without a gRPC status, as grpc-js reports it. */
function statusOfReset(rstCode: number): number {
  const c = http2.constants;
  if (rstCode === c.NGHTTP2_REFUSED_STREAM) return GRPC_STATUS.UNAVAILABLE;
  if (rstCode === c.NGHTTP2_CANCEL) return GRPC_STATUS.CANCELLED;
  if (rstCode === c.NGHTTP2_ENHANCE_YOUR_CALM) return GRPC_STATUS.RESOURCE_EXHAUSTED;
  if (rstCode === c.NGHTTP2_INADEQUATE_SECURITY) return GRPC_STATUS.PERMISSION_DENIED;
  return GRPC_STATUS.INTERNAL;
}

/** grpc-message is percent-encoded (doc/PROTOCOL-HTTP2.md); a bad escape is kept as written. */
function decodeGrpcMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length, the bytes. */
export function frameMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** Sends the request and resolves to the response message; rejects with GrpcStatusError for every failure. */
export function grpcUnary(call: UnaryCall): Promise<Buffer> {
  const { host, port } = parseHostPort(call.address);
  const authority = call.serverName ?? formatHostPort(host, port);
  const maxResponse = call.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    let session: ClientHttp2Session | undefined;
    let stream: ClientHttp2Stream | undefined;
    const finish = (err: GrpcStatusError | undefined, message?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      session?.close();
      // A session that does not close by itself (a peer that never answers GOAWAY) is not kept alive for it.
      session?.unref();
      if (err) reject(err);
      else resolve(message!);
    };
    const timer = setTimeout(() => finish(new GrpcStatusError(GRPC_STATUS.DEADLINE_EXCEEDED, `deadline of ${call.deadlineMs} ms exceeded`)), call.deadlineMs);

    session = http2.connect(`https://${formatHostPort(host, port)}`, {
      ca: call.ca,
      // SNI carries names, never addresses (RFC 6066); an address is verified against the certificate's IP SANs.
      ...(call.serverName !== undefined ? { servername: call.serverName } : isIP(host) ? {} : { servername: host }),
    });
    const unavailable = (err: NodeJS.ErrnoException): GrpcStatusError => new GrpcStatusError(GRPC_STATUS.UNAVAILABLE, `connection to ${call.address} failed: ${err.message}`);
    // Connect, TLS and session failures; a stream the session takes down with it reports the same.
    session.on('error', (err: NodeJS.ErrnoException) => finish(unavailable(err)));

    const headers: Record<string, string> = {
      ':method': 'POST',
      ':scheme': 'https',
      ':path': call.path,
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${Math.max(1, Math.ceil(call.deadlineMs))}m`,
    };
    for (const [k, v] of Object.entries(call.metadata ?? {})) headers[k.toLowerCase()] = v;
    stream = session.request(headers, { endStream: false });

    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let received = 0;
    stream.on('response', (h) => {
      responseHeaders = h;
      const httpStatus = Number(h[':status']);
      const contentType = String(h['content-type'] ?? '');
      if (httpStatus !== 200 || !contentType.startsWith('application/grpc')) {
        // A gRPC status in the headers (Trailers-Only) says more than the HTTP one.
        if (h['grpc-status'] === undefined) {
          finish(new GrpcStatusError(statusOfHttp(httpStatus), `HTTP ${httpStatus} from ${call.address}${contentType === '' ? '' : ` (${contentType})`}, not a gRPC answer`));
        }
      }
    });
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxResponse + 5) finish(new GrpcStatusError(GRPC_STATUS.RESOURCE_EXHAUSTED, `response larger than ${maxResponse} bytes`));
      else chunks.push(chunk);
    });
    let trailers: IncomingHttpHeaders = {};
    stream.on('trailers', (t) => (trailers = t));
    let streamError: NodeJS.ErrnoException | undefined;
    stream.on('error', (err: NodeJS.ErrnoException) => (streamError = err));
    stream.on('close', () => {
      if (settled) return;
      const statusHeader = trailers['grpc-status'] ?? responseHeaders['grpc-status'];
      if (statusHeader === undefined) {
        const rst = stream!.rstCode ?? http2.constants.NGHTTP2_NO_ERROR;
        // Taken down with its connection (connect or TLS failure, the server going away): UNAVAILABLE, as grpc-js says, so callers retry.
        // ERR_HTTP2_STREAM_ERROR is the server's RST_STREAM, reported below by its code.
        const resetByServer = streamError?.code === 'ERR_HTTP2_STREAM_ERROR';
        if ((streamError !== undefined && !resetByServer) || session!.destroyed || session!.closed) {
          const cause = (streamError?.cause as NodeJS.ErrnoException | undefined) ?? streamError;
          finish(cause === undefined ? new GrpcStatusError(GRPC_STATUS.UNAVAILABLE, `${call.address} closed the connection during the call`) : unavailable(cause));
        } else if (rst === http2.constants.NGHTTP2_NO_ERROR) {
          finish(new GrpcStatusError(GRPC_STATUS.UNKNOWN, 'the call ended without a gRPC status'));
        } else {
          finish(new GrpcStatusError(statusOfReset(rst), `the server reset the call (HTTP/2 code ${rst})`));
        }
        return;
      }
      const code = Number(statusHeader);
      if (code !== GRPC_STATUS.OK) {
        finish(new GrpcStatusError(Number.isInteger(code) ? code : GRPC_STATUS.UNKNOWN, decodeGrpcMessage(trailers['grpc-message'] ?? responseHeaders['grpc-message'])));
        return;
      }
      const body = Buffer.concat(chunks);
      if (body.length < 5) return finish(new GrpcStatusError(GRPC_STATUS.INTERNAL, 'OK without a response message'));
      if (body[0] !== 0) return finish(new GrpcStatusError(GRPC_STATUS.INTERNAL, 'compressed response message, but no compression was offered'));
      const length = body.readUInt32BE(1);
      if (body.length !== 5 + length) return finish(new GrpcStatusError(GRPC_STATUS.INTERNAL, `response framing: ${body.length - 5} bytes for a message of ${length}`));
      finish(undefined, body.subarray(5));
    });
    stream.end(frameMessage(call.message));
  });
}
