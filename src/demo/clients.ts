import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';

/**
 * What an application does when it is given HTTPS_PROXY: CONNECT through the
 * agent then TLS to the destination, or an absolute-URI request for plain
 * HTTP. Plain node:http and node:https, nothing of egressd's.
 */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function readReply(res: import('node:http').IncomingMessage): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => (body += chunk));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    res.on('error', reject);
  });
}

/** GET https://host:port/path through the proxy's CONNECT tunnel; a refused CONNECT is returned as the reply. */
export function httpsViaProxy(proxy: { host: string; port: number }, url: URL, ca: string): Promise<Reply> {
  const port = Number(url.port || 443);
  return new Promise((resolve, reject) => {
    const connect = httpRequest({ host: proxy.host, port: proxy.port, method: 'CONNECT', path: `${url.hostname}:${port}`, headers: { host: `${url.hostname}:${port}` } });
    connect.on('error', reject);
    connect.on('connect', (res, socket, head) => {
      if (res.statusCode !== 200) {
        let body = head.toString('utf8');
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (body += chunk));
        socket.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        return;
      }
      const req = httpsRequest(
        { host: url.hostname, port, path: url.pathname, createConnection: () => tlsConnect({ socket, servername: url.hostname, ca }) },
        (reply) => readReply(reply).then(resolve, reject),
      );
      req.on('error', reject);
      req.end();
    });
    connect.end();
  });
}

/** GET http://host/path as an absolute-URI request to the proxy. */
export function httpViaProxy(proxy: { host: string; port: number }, url: URL): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: proxy.host, port: proxy.port, path: url.href, headers: { host: url.host } }, (res) => readReply(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}
