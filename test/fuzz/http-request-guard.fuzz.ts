/**
 * Fuzzes the relay thread's keep-alive guard (src/agent/native/http-request-guard.c) through
 * its addon, for as long as asked: streams of real requests, mutated (bytes flipped, put in,
 * taken out, ranges repeated, hostile tokens spliced in), must
 *   - get the same answer however the bytes are split across reads, and send the same bytes
 *     on (the guard holds an unfinished head back and releases it whole), and
 *   - be read like the TypeScript parser the sniffer uses reads their first head, or more
 *     strictly (test/unit/agent/native/http-request-guard.test.ts says how).
 * A failure prints the seed and the case (base64) and exits 1.
 *
 *   npm run fuzz -- [--seconds 60] [--seed N]
 */
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { guardFor } from '../../src/agent/native-relay.ts';
import { RequestHostCheck } from '../../src/core/http1-request-host.ts';
import { parseHttpRequestHead } from '../../src/core/http1-request-head.ts';
import { normalizeHost } from '../../src/core/net.ts';

interface Verdict {
  refused?: string;
  sent: Buffer;
}
const addon = createRequire(import.meta.url)('#relay-addon') as { guardNew(host: string | null, alias?: string): object; guardFeed(guard: object, bytes: Buffer): Verdict };

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' } } });
const seconds = Number(values.seconds);
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
if (!(seconds > 0) || !Number.isInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- [--seconds N] [--seed N]\n');
  process.exit(2);
}

/** mulberry32: small, seeded, good enough to spread mutations. */
function prng(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = prng(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const int = (n: number): number => Math.floor(random() * n);

const get = (host: string, path = '/'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n`;
const CORPUS = [
  get('api.example.test', '/a') + get('api.example.test', '/b'),
  'POST /upload HTTP/1.1\r\nHost: API.Example.Test:80\r\nContent-Length: 11\r\n\r\nhello world' + get('api.example.test.'),
  'PUT /chunks HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' + get('api.example.test'),
  'GET http://user@api.example.test:8080/abs HTTP/1.1\r\nHost: api.example.test:8080\r\n\r\nGET / HTTP/1.0\r\n\r\n',
  'GET / HTTP/1.0\r\nHost: [2001:db8::1]:80\r\n\r\nGET /ws HTTP/1.1\r\nHost: [2001:db8::1]\r\nUpgrade: websocket\r\n\r\n\x81\x05hello',
];
const TOKENS = ['\r\n', '\r', '\n', ' ', '\t', ':', '@', '[', ']', '/', '\0', '\x0b', '\xa0', '\xff', 'Host: evil.example.test\r\n', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 5\r\n', '0\r\n\r\n', 'ffffffffffff\r\n', 'GET ', ' HTTP/1.1\r\n', '\r\n\r\n'];

function mutate(text: string): Buffer {
  let bytes = Buffer.from(text, 'latin1');
  for (let n = 1 + int(4); n > 0; n--) {
    const at = int(bytes.length + 1);
    switch (int(5)) {
      case 0:
        if (bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = int(256);
        break;
      case 1:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(pick(TOKENS), 'latin1'), bytes.subarray(at)]);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(8))]);
        break;
      case 3: {
        const end = Math.min(bytes.length, at + int(64));
        bytes = Buffer.concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
        break;
      }
      default:
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(Array.from({ length: 1 + int(6) }, () => int(256))), bytes.subarray(at)]);
    }
  }
  return bytes;
}

/** The guard's answer on `bytes` fed in reads of `sizes()` bytes: why it cut the stream, or what went on to the destination. */
function feed(host: ReturnType<typeof guardFor>, bytes: Buffer, sizes: () => number): { refused: string } | { sent: Buffer } {
  const guard = host.alias === undefined ? addon.guardNew(host.host) : addon.guardNew(host.host, host.alias);
  const sent: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, sizes());
    const verdict = addon.guardFeed(guard, bytes.subarray(i, i + n));
    if (verdict.refused !== undefined) return { refused: verdict.refused };
    sent.push(verdict.sent);
    i += n;
  }
  return { sent: Buffer.concat(sent) };
}

const refusal = (answer: ReturnType<typeof feed>): string | undefined => ('refused' in answer ? answer.refused : undefined);

/** What is wrong with the guard's answer on `bytes`; else `refused: <reason>` when it cut the stream, undefined when it let it through. */
function check(bytes: Buffer): string | undefined {
  const head = parseHttpRequestHead(bytes);
  const name = head.status === 'complete' ? (head.host ?? head.targetHost) : null;
  const host = guardFor(name);
  const wholeAnswer = feed(host, bytes, () => bytes.length);
  const splitAnswer = feed(host, bytes, () => 1 + int(32));
  const whole = refusal(wholeAnswer);
  const split = refusal(splitAnswer);
  if (whole !== split) return `split reads disagree: whole ${whole ?? 'passes'}, split ${split ?? 'passes'}`;
  if ('sent' in wholeAnswer && 'sent' in splitAnswer && !wholeAnswer.sent.equals(splitAnswer.sent)) return 'split reads send other bytes than one read';
  const verdict = whole === undefined ? undefined : `refused: ${whole}`;
  if (head.status === 'complete') {
    const first = refusal(feed(host, bytes.subarray(0, head.length), () => head.length));
    const passes = new RequestHostCheck(name).other(head.host, head.targetHost) === undefined;
    // By design: names compared by case and a trailing dot alone, where WHATWG rules rewrite some (IDNA,
    // `192.0.2` for 192.0.0.2, '' for what is no name, and '' equals ''); names of printable ASCII; exactly `chunked`.
    const rewritten = [head.host, head.targetHost].some((n) => n !== null && normalizeHost(n) !== n.toLowerCase().replace(/\.$/, ''));
    const stricterByDesign = rewritten || /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\xff]/.test(bytes.subarray(0, head.length).toString('latin1')) || /transfer-encoding/i.test(bytes.toString('latin1'));
    if (passes && first !== undefined && !stricterByDesign) return `the parser reads the first head, the guard refuses it: ${first}`;
    if (!passes && first === undefined) return 'the first head names two hosts, the guard lets it through';
  } else if (head.status !== 'incomplete' && whole === undefined) {
    return `the parser finds the first head ${head.status}, the guard lets it through`;
  }
  return verdict;
}

const deadline = Date.now() + seconds * 1000;
let cases = 0;
let refused = 0;
while (Date.now() < deadline) {
  for (let i = 0; i < 500; i++) {
    const bytes = mutate(pick(CORPUS));
    const problem = check(bytes);
    cases++;
    if (problem?.startsWith('refused:')) refused++;
    else if (problem !== undefined) {
      process.stderr.write(`seed ${seed}, case ${cases}: ${problem}\n  bytes (base64): ${bytes.toString('base64')}\n  as text: ${JSON.stringify(bytes.toString('latin1'))}\n`);
      process.exit(1);
    }
  }
}
process.stdout.write(`http-request-guard: ${cases} mutated streams in ${seconds} s (seed ${seed}), ${refused} of them cut by the guard; no disagreement\n`);
