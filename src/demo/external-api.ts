import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServerPki, type ServerPki } from '../pki/server-pki.ts';

/**
 * The demo's stand-in for an external API, `api.example.test`: HTTPS and
 * plain HTTP (on loopback, or on 443 and 80 in the transparent demo's
 * internet namespace), with a throwaway CA the demo's clients trust.
 * It answers with what it saw, so the demo can show what reached it.
 */
export interface ExternalApi {
  host: string;
  pki: ServerPki;
  httpsPort: number;
  httpPort: number;
  close(): Promise<void>;
}

function answer(scheme: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    // XFCC is how an originating gateway tells the destination which workload is calling.
    const xfcc = req.headers['x-forwarded-client-cert'] ?? null;
    const body = JSON.stringify({ served_by: `${scheme}://api.example.test`, method: req.method, path: req.url, host: req.headers.host, 'x-forwarded-client-cert': xfcc }) + '\n';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export interface ExternalApiOptions {
  /** Address to listen on (default 127.0.0.1). */
  bind?: string;
  /** Ports (default 0: any free one). */
  httpsPort?: number;
  httpPort?: number;
}

export async function startExternalApi(options: ExternalApiOptions = {}, host = 'api.example.test'): Promise<ExternalApi> {
  const bind = options.bind ?? '127.0.0.1';
  const pki = await createServerPki([host], { caName: 'egressd demo external CA' });
  const https = createHttpsServer({ cert: pki.certPem, key: pki.keyPem }, answer('https'));
  const http = createHttpServer(answer('http'));
  const [httpsPort, httpPort] = [await listen(https, bind, options.httpsPort ?? 0), await listen(http, bind, options.httpPort ?? 0)];
  return {
    host,
    pki,
    httpsPort,
    httpPort,
    close: async () => {
      for (const server of [https, http]) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  };
}
