/** Servers that answer each request with the JSON of what they saw: method, path, headers, body, TLS server name. */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Leaf } from './_pki.ts';

/** What a destination server saw. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  servername: string | null;
  /** The client certificate's subjectaltname, when the server asked for one. */
  clientSan: string | null;
}

export interface EchoServer {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers every request with 200 and the JSON of what it saw. HTTPS when given a certificate. */
export async function startEcho(
  options: { leaf?: Leaf; host?: string; port?: number; onRequest?: (seen: Seen) => void; /** Require a client certificate from this CA. */ clientCa?: string } = {},
): Promise<EchoServer> {
  const { leaf } = options;
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        servername: (req.socket as { servername?: string | false }).servername || null,
        clientSan: options.clientCa ? ((req.socket as TLSSocket).getPeerCertificate().subjectaltname ?? null) : null,
      };
      seen.push(entry);
      options.onRequest?.(entry);
      const body = JSON.stringify(entry);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  };
  const mutual = options.clientCa ? { requestCert: true, rejectUnauthorized: true, ca: options.clientCa } : {};
  const server = leaf ? https.createServer({ cert: leaf.certPem, key: leaf.keyPem, ...mutual }, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
