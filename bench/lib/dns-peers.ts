import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { buildOptions } from '../../scripts/build.ts';
import { AGENT_NODE_FLAGS } from '../../src/agent/node-flags.ts';

/**
 * The DNS benchmark's servers, each a process of its own on loopback, all
 * pinned to the same CPU when `cpu` is given (the load generator gets the
 * other one), so that no peer shares its CPU with the client and every peer
 * runs under the same conditions:
 *
 *   origin   dnsmasq answering *.bench.test itself, no cache (what `direct` asks)
 *   dnsmasq  dnsmasq as a caching forwarder to the origin
 *   egressd  the agent's DNS proxy forwarding to the origin
 *   echo     a Node process answering a fixed record (the most Node does here)
 *
 * The two Node peers run as the agent runs in production: bundled with the
 * production build's options (no TypeScript loader and its thread) and with
 * the agent's Node flags (AGENT_NODE_FLAGS: a 1 MiB young generation, one V8
 * helper thread).
 */
export const HOST = '127.0.0.1';

export interface DnsPeer {
  port: number;
  pid: number;
}

export interface DnsPeers {
  origin: DnsPeer;
  dnsmasq: DnsPeer;
  egressd: DnsPeer;
  echo: DnsPeer;
  stop(): Promise<void>;
}

const PEER_SCRIPT = fileURLToPath(new URL('./dns-peer.ts', import.meta.url));
/** dns-peer.ts and what it imports as one file, built as the production bundle is (scripts/build.ts), in a directory of this run's own. */
async function bundlePeer(): Promise<{ file: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-dns-bench-'));
  await build({ ...buildOptions(dir), entryPoints: { 'dns-peer': PEER_SCRIPT }, splitting: false, metafile: false });
  return { file: join(dir, 'dns-peer.mjs'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** `command args` run on `cpu` only (taskset), or unpinned. */
export function pinned(cpu: number | undefined, command: string, args: readonly string[]): [string, string[]] {
  return cpu === undefined ? [command, [...args]] : ['taskset', ['-c', String(cpu), command, ...args]];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export async function startPeers(cpu: number | undefined): Promise<DnsPeers> {
  const children: ChildProcess[] = [];
  const start = async (command: string, args: string[], ready: string): Promise<number> => {
    // taskset execs the command: the child's pid is the server's, whose CPU time the report charges.
    const child = spawn(...pinned(cpu, command, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const check = (d: Buffer): void => {
        seen += d.toString();
        if (seen.includes(ready)) resolve();
      };
      child.stdout!.on('data', check);
      child.stderr!.on('data', check);
      child.on('error', reject);
      child.on('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready: ${seen.trim()}`)));
    });
    return child.pid!;
  };
  const dnsmasq = (port: number, extra: string[]): Promise<number> =>
    start('dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${HOST}`, `--port=${port}`, ...extra], 'started');
  const peer = await bundlePeer();
  const stop = async (): Promise<void> => {
    children.forEach((c) => c.kill('SIGTERM'));
    await peer.remove();
  };
  try {
    const [origin, cache, egressd, echo] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    return {
      origin: { port: origin, pid: await dnsmasq(origin, ['--local-ttl=3600', '--address=/bench.test/192.0.2.1', '--cache-size=0']) },
      dnsmasq: { port: cache, pid: await dnsmasq(cache, [`--server=${HOST}#${origin}`, '--cache-size=10000', '--dns-forward-max=1000']) },
      egressd: { port: egressd, pid: await start(process.execPath, [...AGENT_NODE_FLAGS, peer.file, 'egressd', String(egressd), String(origin)], 'listening') },
      echo: { port: echo, pid: await start(process.execPath, [...AGENT_NODE_FLAGS, peer.file, 'echo', String(echo)], 'listening') },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
