/**
 * Run by the transparent demo inside its "internet" namespace, as root for
 * the low ports: the stand-in for api.example.test on 443 (HTTPS) and 80
 * (HTTP) of every address there, and a UDP listener on 443 that answers any
 * datagram, so a QUIC packet that got out of the pod would be seen to.
 * Writes the throwaway CA to the file named by argv[2] (the application's
 * `curl --cacert`), then prints `{"event":"ready"}`; exits on SIGTERM/SIGINT.
 */
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import { errorMessage } from '../core/errors.ts';
import { startExternalApi } from './external-api.ts';

const caFile = process.argv[2];
if (caFile === undefined) {
  process.stderr.write('usage: external-api-process.ts <ca-file>\n');
  process.exit(2);
}

try {
  const api = await startExternalApi({ bind: '0.0.0.0', httpsPort: 443, httpPort: 80 });
  const quic = createSocket('udp4');
  quic.on('message', (msg, from) => quic.send(`udp 443 got ${msg.length} bytes\n`, from.port, from.address));
  await new Promise<void>((resolve, reject) => {
    quic.once('error', reject);
    quic.bind(443, '0.0.0.0', resolve);
  });
  await writeFile(caFile, api.pki.caPem, { mode: 0o644 });
  const stop = (): void => {
    quic.close();
    void api.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
} catch (err) {
  process.stderr.write(`external api: ${errorMessage(err)}\n`);
  process.exit(1);
}
