import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnInNetns, waitForListen, type NetnsProcess, type TeardownHost } from '../../src/lab/index.ts';
import { CHAIN, type ChainLab } from './chain-lab.ts';
import type { ChainPki } from './chain-pki.ts';

/**
 * The peer chain, built from Debian's HAProxy the way one would by hand:
 * - in the pod, as the agent's UID (so iptables leaves its traffic alone): plain TCP in from the
 *   application on loopback, mutual TLS out to gw with a client certificate from the mesh CA;
 * - in gw: TLS termination that requires a client certificate from the mesh CA, HTTP parsed
 *   (like the egressd gateway, which parses the tunnel's requests), a header naming the caller's
 *   certificate, one log line per request on stdout (the gateway audits each request), and TLS
 *   origination to the destination over reused connections, verified against the internet CA,
 *   with SNI.
 */
export interface HaproxyChain {
  pod: NetnsProcess;
  gw: NetnsProcess;
}

const DEFAULTS = ['  timeout connect 5s', '  timeout client 60s', '  timeout server 60s'];

function podConfig(pki: ChainPki): string {
  return [
    'global',
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    ...DEFAULTS,
    'frontend app',
    `  bind 127.0.0.1:${CHAIN.haproxyPodPort}`,
    '  default_backend gateway',
    'backend gateway',
    `  server gw ${CHAIN.gwIp}:${CHAIN.haproxyGwPort} ssl crt ${pki.haproxyClient} ca-file ${pki.meshCa} verify required verifyhost ${CHAIN.haproxyGwName} sni str(${CHAIN.haproxyGwName})`,
    '',
  ].join('\n');
}

function gwConfig(pki: ChainPki): string {
  return [
    'global',
    '  maxconn 4096',
    '  log stdout format raw local0',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    ...DEFAULTS,
    '  timeout http-keep-alive 60s',
    'frontend tunnels',
    `  bind ${CHAIN.gwIp}:${CHAIN.haproxyGwPort} ssl crt ${pki.haproxyGateway} ca-file ${pki.meshCa} verify required`,
    '  http-request set-header x-forwarded-client-cert Hash=%[ssl_c_sha1,hex]',
    `  http-request set-header host ${CHAIN.host}`,
    '  default_backend api',
    'backend api',
    '  http-reuse always',
    `  server api ${CHAIN.serverIp}:${CHAIN.serverPort} ssl ca-file ${pki.internetCa} verify required verifyhost ${CHAIN.host} sni str(${CHAIN.host})`,
    '',
  ].join('\n');
}

export async function startHaproxyChain(t: TeardownHost, lab: ChainLab, pki: ChainPki, dir: string, agentUid: number): Promise<HaproxyChain> {
  const podCfg = join(dir, 'haproxy-pod.cfg');
  const gwCfg = join(dir, 'haproxy-gw.cfg');
  await writeFile(podCfg, podConfig(pki), { mode: 0o644 });
  await writeFile(gwCfg, gwConfig(pki), { mode: 0o644 });
  const gw = spawnInNetns(t, lab.gw, 'haproxy', ['-db', '-f', gwCfg]);
  const pod = spawnInNetns(t, lab.pod, 'haproxy', ['-db', '-f', podCfg], { uid: agentUid });
  await waitForListen(lab.gw, CHAIN.haproxyGwPort).catch((err: unknown) => {
    throw new Error(`gateway haproxy did not listen: ${gw.stderr()}`, { cause: err });
  });
  await waitForListen(lab.pod, CHAIN.haproxyPodPort).catch((err: unknown) => {
    throw new Error(`pod haproxy did not listen: ${pod.stderr()}`, { cause: err });
  });
  return { pod, gw };
}
