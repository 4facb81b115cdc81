/**
 * The least a Node.js TCP forwarder does: accept, connect, pipe() both ways
 * (Node's default flags). The agent-path benchmark runs it beside egressd and
 * HAProxy, so that what egressd adds can be told apart from what the runtime
 * costs on the machine at hand. Prints "listening" when up.
 *
 *   node-forwarder.ts LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT
 */
import net from 'node:net';

const [listenPort, upstreamHost, upstreamPort] = process.argv.slice(2);

net
  .createServer({ noDelay: true }, (client) => {
    const upstream = net.connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  })
  .listen(Number(listenPort), '127.0.0.1', () => process.stdout.write('listening\n'));
