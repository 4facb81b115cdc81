/**
 * The unary gRPC call against HTTP/2 servers on loopback that answer as gRPC servers do,
 * and as broken or vanishing ones do: every outcome is a message or a GrpcStatusError with
 * the status a gRPC client gives it. (Against the real control plane: ca-client.test.ts.)
 */
import test, { type ExecutionContext } from 'ava';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createServerPki, type ServerPki } from '../../../src/pki/server-pki.ts';
import { frameMessage, GRPC_STATUS, GrpcStatusError, grpcUnary, type UnaryCall } from '../../../src/pki/grpc-unary.ts';

let pki: Promise<ServerPki> | undefined;
const serverPki = (): Promise<ServerPki> => (pki ??= createServerPki(['localhost', '127.0.0.1']));

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** An HTTP/2 TLS server whose streams `answer` handles once the request body is in. */
async function server(t: ExecutionContext, answer: (stream: ServerHttp2Stream, request: Received) => void): Promise<{ address: string; received: Received[] }> {
  const { keyPem, certPem } = await serverPki();
  const received: Received[] = [];
  const s = http2.createSecureServer({ key: keyPem, cert: certPem });
  s.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const request = { headers, body: Buffer.concat(chunks) };
      received.push(request);
      answer(stream, request);
    });
  });
  s.on('session', (session) => session.on('error', () => {}));
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return { address: `127.0.0.1:${(s.address() as AddressInfo).port}`, received };
}

async function call(address: string, extra: Partial<UnaryCall> = {}): Promise<Buffer> {
  return grpcUnary({ address, ca: (await serverPki()).caPem, path: '/test.Echo/Call', message: Buffer.from('ping'), deadlineMs: 10_000, ...extra });
}

async function failure(t: ExecutionContext, promise: Promise<unknown>): Promise<GrpcStatusError> {
  const err = await t.throwsAsync(promise, { instanceOf: GrpcStatusError });
  return err as GrpcStatusError;
}

const ok = (stream: ServerHttp2Stream, message: Buffer): void => {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(frameMessage(message));
};

test('a call: POST with the gRPC headers and a framed message; the answer message comes back', async (t) => {
  const s = await server(t, (stream, request) => ok(stream, Buffer.concat([Buffer.from('pong:'), request.body.subarray(5)])));
  const answer = await call(s.address, { metadata: { Authorization: 'Bearer abc', ClusterID: 'east' }, deadlineMs: 7000 });
  t.is(answer.toString(), 'pong:ping');
  const { headers, body } = s.received[0]!;
  t.like(headers, {
    ':method': 'POST',
    ':scheme': 'https',
    ':path': '/test.Echo/Call',
    ':authority': s.address,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '7000m',
    authorization: 'Bearer abc',
    clusterid: 'east',
  });
  t.deepEqual(body, Buffer.from([0, 0, 0, 0, 4, ...Buffer.from('ping')]));
});

test('serverName: verified against the certificate, sent as SNI and :authority', async (t) => {
  const s = await server(t, (stream) => ok(stream, Buffer.from('x')));
  await call(s.address, { serverName: 'localhost' });
  t.is(s.received[0]!.headers[':authority'], 'localhost');
  const err = await failure(t, call(s.address, { serverName: 'bank.example' }));
  t.is(err.code, GRPC_STATUS.UNAVAILABLE);
  t.regex(err.details, /bank\.example/);
});

test('a server certificate from another CA: UNAVAILABLE, nothing sent', async (t) => {
  const s = await server(t, (stream) => ok(stream, Buffer.from('x')));
  const other = await createServerPki(['localhost'], { caName: 'someone else' });
  const err = await failure(t, call(s.address, { ca: other.caPem }));
  t.is(err.code, GRPC_STATUS.UNAVAILABLE);
  t.regex(err.message, /^UNAVAILABLE: connection to 127\.0\.0\.1:\d+ failed: .*certificate/);
  t.is(s.received.length, 0);
});

test('nothing listening: UNAVAILABLE with the connect error', async (t) => {
  const err = await failure(t, call('127.0.0.1:1'));
  t.is(err.code, GRPC_STATUS.UNAVAILABLE);
  t.regex(err.details, /ECONNREFUSED/);
});

test('a status in the trailers after no message, and Trailers-Only: code and percent-decoded message', async (t) => {
  const trailers = await server(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '7', 'grpc-message': 'caf%C3%A9: not for you%' }));
    stream.end();
  });
  const err = await failure(t, call(trailers.address));
  t.is(err.code, GRPC_STATUS.PERMISSION_DENIED);
  t.is(err.details, 'caf%C3%A9: not for you%', 'a bad escape leaves the message as written');
  const only = await server(t, (stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'token%20expired' }, { endStream: true }));
  const err2 = await failure(t, call(only.address));
  t.is(err2.code, GRPC_STATUS.UNAUTHENTICATED);
  t.is(err2.message, 'UNAUTHENTICATED: token expired');
});

test('not a gRPC server: the HTTP status mapped as gRPC clients map it', async (t) => {
  const cases: Array<[number, number]> = [
    [404, GRPC_STATUS.UNIMPLEMENTED],
    [503, GRPC_STATUS.UNAVAILABLE],
    [401, GRPC_STATUS.UNAUTHENTICATED],
    [500, GRPC_STATUS.UNKNOWN],
  ];
  for (const [httpStatus, code] of cases) {
    const s = await server(t, (stream) => stream.respond({ ':status': httpStatus, 'content-type': 'text/plain' }, { endStream: true }));
    const err = await failure(t, call(s.address));
    t.is(err.code, code, `HTTP ${httpStatus}`);
    t.regex(err.details, new RegExp(`HTTP ${httpStatus}`));
  }
});

test('broken answers: no status, a compressed message, a short frame, too large a message', async (t) => {
  const noStatus = await server(t, (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    stream.end(frameMessage(Buffer.from('x')));
  });
  t.is((await failure(t, call(noStatus.address))).code, GRPC_STATUS.UNKNOWN);
  const respond = (body: Buffer) => (stream: ServerHttp2Stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(body);
  };
  const compressed = frameMessage(Buffer.from('x'));
  compressed[0] = 1;
  t.is((await failure(t, call((await server(t, respond(compressed))).address))).code, GRPC_STATUS.INTERNAL);
  t.is((await failure(t, call((await server(t, respond(frameMessage(Buffer.from('xyz')).subarray(0, 6)))).address))).code, GRPC_STATUS.INTERNAL);
  t.is((await failure(t, call((await server(t, respond(Buffer.alloc(0)))).address))).code, GRPC_STATUS.INTERNAL);
  const big = await server(t, respond(frameMessage(Buffer.alloc(2048))));
  t.is((await failure(t, call(big.address, { maxResponseBytes: 1024 }))).code, GRPC_STATUS.RESOURCE_EXHAUSTED);
  t.is((await call(big.address, { maxResponseBytes: 4096 })).length, 2048);
});

test('a server that resets the call: the status gRPC gives each reset code', async (t) => {
  const cases: Array<[number, number]> = [
    [http2.constants.NGHTTP2_REFUSED_STREAM, GRPC_STATUS.UNAVAILABLE],
    [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, GRPC_STATUS.RESOURCE_EXHAUSTED],
    [http2.constants.NGHTTP2_INTERNAL_ERROR, GRPC_STATUS.INTERNAL],
  ];
  for (const [rst, code] of cases) {
    const s = await server(t, (stream) => stream.close(rst));
    t.is((await failure(t, call(s.address))).code, code, `RST_STREAM ${rst}`);
  }
});

test('a server that drops the connection during the call: UNAVAILABLE, so that the caller retries', async (t) => {
  const destroyed = await server(t, (stream) => stream.session!.destroy());
  t.is((await failure(t, call(destroyed.address))).code, GRPC_STATUS.UNAVAILABLE);
  const goaway = await server(t, (stream) => {
    stream.session!.goaway(http2.constants.NGHTTP2_NO_ERROR, 0);
    stream.session!.destroy();
  });
  t.is((await failure(t, call(goaway.address))).code, GRPC_STATUS.UNAVAILABLE);
});

test('no answer within the deadline: DEADLINE_EXCEEDED, and the call is cancelled', async (t) => {
  let cancelled!: () => void;
  const gone = new Promise<void>((resolve) => (cancelled = resolve));
  const s = await server(t, (stream) => stream.on('close', cancelled));
  const err = await failure(t, call(s.address, { deadlineMs: 300 }));
  t.is(err.code, GRPC_STATUS.DEADLINE_EXCEEDED);
  t.is(s.received[0]!.headers['grpc-timeout'], '300m');
  await gone;
  t.pass('the server saw the stream end');
});
