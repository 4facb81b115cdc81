import test from 'ava';
import { parseCommand } from '../../../src/core/options.ts';
import { EgressdError } from '../../../src/core/errors.ts';
import { INIT_OPTION_SPECS, parseCidr, toBackend, toInitOptions, type InitOptions } from '../../../src/iptables/options.ts';

function options(argv: string[], env: Record<string, string> = {}): InitOptions {
  const { options: flags } = parseCommand('egressd init', INIT_OPTION_SPECS, argv, env);
  return toInitOptions(flags);
}

function usageError(argv: string[], env: Record<string, string> = {}): string {
  const err = (() => {
    try {
      options(argv, env);
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  if (!(err instanceof EgressdError) || err.code !== 'EGRESSD_ERR_USAGE') throw new Error(`expected a usage error for ${argv.join(' ')}`);
  return err.message;
}

test('defaults: agent 1337, ports 15001/15053, IPv6 intercepted, UDP rejected, DNS redirected', (t) => {
  t.deepEqual(options([]), {
    agentUid: 1337,
    agentGid: undefined,
    outboundPort: 15001,
    dnsPort: 15053,
    excludeCidrs: { ipv4: [], ipv6: [] },
    excludePorts: [],
    excludeUids: [],
    ipv6: true,
    rejectUdp: true,
    redirectDns: true,
  });
  t.true(Object.isFrozen(options([])));
});

test('environment variables fill in for absent flags, flags win', (t) => {
  const env = {
    EGRESSD_AGENT_UID: '2000',
    EGRESSD_AGENT_GID: '2001',
    EGRESSD_OUTBOUND_PORT: '16001',
    EGRESSD_DNS_PORT: '16053',
    EGRESSD_EXCLUDE_CIDRS: '10.0.0.0/8, fd00::/8,192.168.1.1',
    EGRESSD_EXCLUDE_PORTS: '5432,5432,6379',
    EGRESSD_EXCLUDE_UIDS: '1500',
    EGRESSD_IPV6: 'false',
    EGRESSD_REJECT_UDP: 'no',
    EGRESSD_REDIRECT_DNS: '0',
  };
  t.like(options([], env), {
    agentUid: 2000,
    agentGid: 2001,
    outboundPort: 16001,
    dnsPort: 16053,
    excludeCidrs: { ipv4: ['10.0.0.0/8', '192.168.1.1/32'], ipv6: ['fd00::/8'] },
    excludePorts: [5432, 6379],
    excludeUids: [1500],
    ipv6: false,
    rejectUdp: false,
    redirectDns: false,
  });
  t.like(options(['--agent-uid', '3000', '--ipv6=true', '--redirect-dns'], env), { agentUid: 3000, ipv6: true, redirectDns: true });
});

test('every bad value is reported at once, naming flag and variable', (t) => {
  const message = usageError(['--outbound-port', '70000', '--exclude-cidrs', '10.0.0.0/33,example.com,1.2.3.4/8/9', '--exclude-ports', 'http,0'], { EGRESSD_EXCLUDE_UIDS: '-1' });
  for (const part of [
    '--outbound-port [EGRESSD_OUTBOUND_PORT]: 70000',
    '"10.0.0.0/33"',
    '"example.com"',
    '"1.2.3.4/8/9"',
    '--exclude-ports [EGRESSD_EXCLUDE_PORTS]: "http"',
    '"0"',
    '--exclude-uids [EGRESSD_EXCLUDE_UIDS]: "-1"',
  ]) {
    t.true(message.includes(part), `${part} missing from: ${message}`);
  }
});

test('contradictions are refused', (t) => {
  t.regex(usageError(['--dns-port', '15001']), /must differ/);
  t.regex(usageError(['--exclude-ports', '53']), /conflicts with --redirect-dns/);
  t.deepEqual(options(['--exclude-ports', '53', '--redirect-dns=false']).excludePorts, [53]);
  t.regex(usageError(['--agent-uid', 'root']), /not an integer/);
  t.regex(usageError(['--ipv6=maybe']), /ipv6/);
});

test('the agent UID is not repeated among excluded UIDs', (t) => {
  t.deepEqual(options(['--exclude-uids', '1337,1500']).excludeUids, [1500]);
});

test('CIDRs: bare addresses get a full prefix, IPv6 is lower-cased, garbage is undefined', (t) => {
  t.deepEqual(parseCidr('10.1.2.3'), { family: 'ipv4', cidr: '10.1.2.3/32' });
  t.deepEqual(parseCidr('FD00::/8'), { family: 'ipv6', cidr: 'fd00::/8' });
  t.deepEqual(parseCidr('0.0.0.0/0'), { family: 'ipv4', cidr: '0.0.0.0/0' });
  for (const bad of ['', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/1x', '::/129', '10.0.0.256/8', 'a/8']) t.is(parseCidr(bad), undefined, bad);
});

test('backend must be a known one', (t) => {
  t.is(toBackend('legacy'), 'legacy');
  t.throws(() => toBackend('ebpf'), { instanceOf: EgressdError, message: /ebpf/ });
});
