import test from 'ava';
import { decide, type DecideFacts, type Verdict } from '../../../src/agent/decide.ts';
import { denialMessage } from '../../../src/agent/denial-message.ts';
import { compilePolicy, parseConfigText } from '../../../src/policy/index.ts';
import { serviceEntry } from './_harness.ts';

const policy = compilePolicy(
  parseConfigText(
    [
      serviceEntry('api', ['api.example.test'], [{ number: 443, protocol: 'TLS' }, { number: 80, protocol: 'HTTP' }]),
      serviceEntry('db', ['db.internal'], [{ number: 5432, protocol: 'TCP' }], { addresses: ['10.40.8.0/24'] }),
    ].join('---\n'),
    'test.yaml',
  ),
);
const identity = { namespace: 'shop', labels: { app: 'web' } };

const CASES: Record<string, { facts: DecideFacts; expect: Partial<Verdict> }> = {
  'SNI naming a listed host on a listed port is allowed': {
    facts: { names: [{ source: 'sni', name: 'api.example.test' }], port: 443, address: '192.0.2.10', protocol: 'TLS' },
    expect: { allow: true, reason: 'allowed_by_rule', host: 'api.example.test', hostSource: 'sni' },
  },
  'names are compared normalized (case, trailing dot)': {
    facts: { names: [{ source: 'connect', name: 'API.Example.Test.' }, { source: 'sni', name: 'api.example.test' }], port: 443 },
    expect: { allow: true, host: 'api.example.test', hostSource: 'connect' },
  },
  'a listed host on another port is refused by the policy': {
    facts: { names: [{ source: 'sni', name: 'api.example.test' }], port: 8443, protocol: 'TLS' },
    expect: { allow: false, reason: 'port_not_allowed' },
  },
  'without a name, the destination IP decides': {
    facts: { names: [], port: 5432, address: '10.40.8.7', protocol: 'TCP' },
    expect: { allow: true, reason: 'allowed_by_rule', host: '10.40.8.7', hostSource: 'ip' },
  },
  'an unlisted IP without a name is refused': {
    facts: { names: [], port: 5432, address: '10.40.9.7', protocol: 'TCP' },
    expect: { allow: false, reason: 'no_matching_rule', host: '10.40.9.7', hostSource: 'ip' },
  },
  'a Host header disagreeing with the SNI is refused before the policy is asked': {
    facts: { names: [{ source: 'sni', name: 'api.example.test' }, { source: 'http', name: 'evil.example.test' }], port: 443 },
    expect: { allow: false, reason: 'host_mismatch', host: 'api.example.test', decision: undefined },
  },
  'an allowed CONNECT host cannot carry an SNI for an unlisted one': {
    facts: { names: [{ source: 'connect', name: 'api.example.test' }, { source: 'sni', name: 'evil.example.test' }], port: 443 },
    expect: { allow: false, reason: 'host_mismatch' },
  },
  'a name that is not a valid host is refused': {
    facts: { names: [{ source: 'http', name: 'bad\u0000name' }], port: 80 },
    expect: { allow: false, reason: 'invalid_host' },
  },
};

for (const [name, { facts, expect }] of Object.entries(CASES)) {
  test(name, (t) => {
    t.like(decide(policy, facts, identity), expect);
  });
}

test('without a policy everything is refused (fail closed)', (t) => {
  t.like(decide(undefined, { names: [{ source: 'sni', name: 'api.example.test' }], port: 443 }, identity), { allow: false, reason: 'config_not_loaded' });
});

test('the ServiceEntry in a denial message, once applied, allows what was denied', (t) => {
  for (const [host, port, address] of [
    ['new.example.test', 443, undefined],
    ['legacy.example.test', 8080, undefined],
    ['203.0.113.9', 5432, '203.0.113.9'],
  ] as const) {
    const facts: DecideFacts = { names: address ? [] : [{ source: 'sni', name: host }], port, ...(address ? { address } : {}) };
    t.like(decide(policy, facts, identity), { allow: false, reason: 'no_matching_rule' });
    const message = denialMessage({ host, port, reason: 'no_matching_rule', namespace: 'shop', configDir: '/etc/egressd/config' });
    const snippet = message
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .slice(1)
      .map((l) => l.slice(2))
      .join('\n');
    const loaded = parseConfigText(snippet, 'snippet.yaml');
    t.deepEqual(loaded.errors, [], snippet);
    t.like(decide(compilePolicy(loaded), facts, identity), { allow: true, reason: 'allowed_by_rule' }, snippet);
  }
});
