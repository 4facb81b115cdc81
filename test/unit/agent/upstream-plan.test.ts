/**
 * Where an allowed connection goes, by the matched ServiceEntry's
 * resolution: each row is decided by the real policy, then planned.
 */
import test from 'ava';
import { decide, type DecideFacts } from '../../../src/agent/decide.ts';
import { planUpstream, type UpstreamPlan } from '../../../src/agent/upstream-plan.ts';
import { verifyDestination } from '../../../src/agent/verify-destination.ts';
import { createResolver } from '../../../src/agent/resolve.ts';
import { compilePolicy, parseConfigText } from '../../../src/policy/index.ts';
import { serviceEntry } from './_harness.ts';

const ALLOWLIST = [
  serviceEntry('dns', ['api.example.test'], [{ number: 443, protocol: 'TLS' }, { number: 80, protocol: 'HTTP' }]),
  serviceEntry('dns-endpoints', ['lb.example.test'], [{ number: 443, protocol: 'TLS' }], { endpoints: ['eu.lb.example.test', 'us.lb.example.test'] }),
  serviceEntry('static', ['db.example.test'], [{ number: 5432, protocol: 'TCP' }], { resolution: 'STATIC', addresses: ['10.9.0.0/24'], endpoints: ['10.9.0.1', '10.9.0.2'] }),
  serviceEntry('none', ['pass.example.test'], [{ number: 443, protocol: 'TLS' }], { resolution: 'NONE', addresses: ['10.20.0.0/16'] }),
  serviceEntry('none-wild', ['*.wild.example.test'], [{ number: 443, protocol: 'TLS' }], { resolution: 'NONE' }),
  serviceEntry('vip', ['vip.example.test'], [{ number: 443, protocol: 'TLS' }], { resolution: 'DNS', addresses: ['10.30.0.7'] }),
  [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata: {name: originate, namespace: default}',
    'spec:',
    '  hosts: [origin.example.test]',
    '  resolution: DNS',
    '  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]',
    '',
  ].join('\n'),
  [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata: {name: target-port, namespace: default}',
    'spec:',
    '  hosts: [tp.example.test]',
    '  resolution: DNS',
    '  ports: [{number: 9000, name: tcp, protocol: TCP, targetPort: 9443}]',
    '',
  ].join('\n'),
].join('---\n');
const policy = compilePolicy(parseConfigText(ALLOWLIST, 'plan.yaml'));
const identity = { namespace: 'shop', labels: {} };

const sni = (name: string, port = 443, address = '192.0.2.66'): DecideFacts => ({ names: [{ source: 'sni', name }], port, address, protocol: 'TLS' });

const ROWS: [string, DecideFacts, boolean, UpstreamPlan][] = [
  ['DNS: the name is dialled, not the IP the client dialled', sni('api.example.test'), true, { endpoints: [{ host: 'api.example.test', port: 443 }] }],
  ['DNS through the explicit proxy: the name', { names: [{ source: 'connect', name: 'api.example.test' }], port: 443 }, false, { endpoints: [{ host: 'api.example.test', port: 443 }] }],
  ['DNS with endpoints: the endpoints, in order', sni('lb.example.test'), true, { endpoints: [{ host: 'eu.lb.example.test', port: 443 }, { host: 'us.lb.example.test', port: 443 }] }],
  ['DNS with a targetPort: the name on the target port', { names: [{ source: 'http', name: 'tp.example.test' }], port: 9000, address: '192.0.2.66' }, true, { endpoints: [{ host: 'tp.example.test', port: 9443 }] }],
  ['TLS origination asked: the direct route keeps the client port (origination is the gateway\'s)', { names: [{ source: 'http', name: 'origin.example.test' }], port: 80, address: '192.0.2.66', protocol: 'HTTP' }, true, { endpoints: [{ host: 'origin.example.test', port: 80 }] }],
  ['DNS matched by address (the dialled IP is in addresses): that IP', { names: [], port: 443, address: '10.30.0.7', protocol: 'TCP' }, true, { endpoints: [{ host: '10.30.0.7', port: 443 }] }],
  ['DNS matched by address under an unlisted name: that IP, never the name', sni('elsewhere.example.test', 443, '10.30.0.7'), true, { endpoints: [{ host: '10.30.0.7', port: 443 }] }],
  ['STATIC matched by address: the endpoints, whatever the client dialled', { names: [], port: 5432, address: '10.9.0.2', protocol: 'TCP' }, true, { endpoints: [{ host: '10.9.0.1', port: 5432 }, { host: '10.9.0.2', port: 5432 }] }],
  ['STATIC by name: the endpoints', sni('db.example.test', 5432), true, { endpoints: [{ host: '10.9.0.1', port: 5432 }, { host: '10.9.0.2', port: 5432 }] }],
  ['NONE by name: the dialled IP, to be verified against the name and the addresses', sni('pass.example.test'), true, { endpoints: [{ host: '192.0.2.66', port: 443 }], verify: { name: 'pass.example.test', address: '192.0.2.66', listed: ['10.20.0.0/16'] } }],
  ['NONE by wildcard: verified against the name the client gave', sni('a.wild.example.test'), true, { endpoints: [{ host: '192.0.2.66', port: 443 }], verify: { name: 'a.wild.example.test', address: '192.0.2.66', listed: [] } }],
  ['NONE by address: the dialled IP, nothing to verify', { names: [], port: 443, address: '10.20.3.4', protocol: 'TCP' }, true, { endpoints: [{ host: '10.20.3.4', port: 443 }] }],
  ['NONE through the explicit proxy: the name, resolved', { names: [{ source: 'connect', name: 'pass.example.test' }], port: 443 }, false, { endpoints: [{ host: 'pass.example.test', port: 443 }] }],
];

for (const [description, facts, transparent, want] of ROWS) {
  test(description, (t) => {
    const verdict = decide(policy, facts, identity);
    t.true(verdict.allow, verdict.reason);
    const dialled = transparent && facts.address !== undefined ? { address: facts.address, port: facts.port } : undefined;
    t.deepEqual(planUpstream(verdict, { host: verdict.host, port: facts.port }, dialled), want);
  });
}

test('a connection no rule allowed (ALLOW_ANY) goes where the client asked', (t) => {
  const open = compilePolicy(
    parseConfigText(
      [ALLOWLIST, 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: shop}\nspec:\n  outboundTrafficPolicy: {mode: ALLOW_ANY}\n'].join('---\n'),
      'open.yaml',
    ),
  );
  const verdict = decide(open, sni('anything.example.org'), identity);
  t.like(verdict, { allow: true, reason: 'allow_any' });
  t.deepEqual(planUpstream(verdict, { host: verdict.host, port: 443 }, { address: '192.0.2.66', port: 443 }), { endpoints: [{ host: '192.0.2.66', port: 443 }] });
  const passthrough = decide(open, sni('pass.example.test'), identity);
  t.is(planUpstream(passthrough, { host: 'pass.example.test', port: 443 }, { address: '192.0.2.66', port: 443 }).verify, undefined, 'ALLOW_ANY would let the IP through anyway');
});

test('verify: an address of the name, or one in the listed blocks, passes; anything else says why', async (t) => {
  const resolve = createResolver([
    { host: 'pass.example.test', port: 443, address: '127.0.0.5' },
    { host: 'pass.example.test', port: 443, address: '::1' },
  ]);
  const check = (address: string, listed: string[] = []) => verifyDestination({ name: 'pass.example.test', address, listed }, 443, resolve);
  t.is(await check('127.0.0.5'), undefined);
  t.is(await check('0:0:0:0:0:0:0:1'), undefined, 'IPv6 compared canonically');
  t.is(await check('10.20.9.9', ['10.20.0.0/16']), undefined);
  t.is(await check('2001:db8::5', ['2001:db8::/32']), undefined);
  t.is(await check('127.0.0.6', ['10.20.0.0/16', '2001:db8::/32']), '127.0.0.6 is not an address of pass.example.test (127.0.0.5, ::1) nor in the ServiceEntry addresses (10.20.0.0/16, 2001:db8::/32)');
  t.is(await check('10.21.0.1', ['10.20.0.0/16']), '10.21.0.1 is not an address of pass.example.test (127.0.0.5, ::1) nor in the ServiceEntry addresses (10.20.0.0/16)');
});
