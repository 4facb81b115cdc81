import test from 'ava';
import { compilePolicy, parseConfigText, type DecideInput, type Decision } from '../../../src/policy/index.ts';

/** One allowlist exercising every matching rule; each row below is one question asked of it. */
const ALLOWLIST = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: exact, namespace: shared}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild, namespace: shared}
spec:
  hosts: ["*.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 8443, name: tls-alt, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild-eu, namespace: shared}
spec:
  hosts: ["*.eu.example.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: idn, namespace: shared}
spec:
  hosts: [bücher.example]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: private, namespace: team-a}
spec:
  hosts: [private.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: listed, namespace: team-a}
spec:
  hosts: [listed.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
  exportTo: [team-b, team-c]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: selected, namespace: shared}
spec:
  hosts: [selected.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
  workloadSelector: {labels: {app: billing, tier: backend}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: shared}
spec:
  hosts: [db.example.net]
  addresses: [10.1.0.0/16]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db-primary, namespace: shared}
spec:
  hosts: [primary.db.example.net]
  addresses: [10.1.2.3]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}, {number: 5433, name: tcp-admin, protocol: TCP}]
  resolution: STATIC
  endpoints: [{address: 10.1.2.3, ports: {tcp-admin: 15433}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: v6, namespace: shared}
spec:
  hosts: [v6.example.net]
  addresses: ["2001:db8::/32"]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dup, namespace: a-first}
spec:
  hosts: [dup.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dup, namespace: b-second}
spec:
  hosts: [dup.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dup, namespace: c-third}
spec:
  hosts: [dup.example.org]
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 8080, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: origin, namespace: shared}
spec:
  hosts: [origin.example.dev]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
  subjectAltNames: [origin.example.dev]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dr-target, namespace: shared}
spec:
  hosts: [dr.example.io]
  ports: [{number: 80, name: http, protocol: HTTP}, {number: 443, name: tls, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr-shared, namespace: shared}
spec:
  host: dr.example.io
  trafficPolicy:
    portLevelSettings:
      - port: {number: 80}
        tls: {mode: SIMPLE, sni: sni.example.io}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr-team-a, namespace: team-a}
spec:
  host: dr.example.io
  trafficPolicy:
    tls: {mode: DISABLE}
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: wild-tls, namespace: shared}
spec:
  hosts: ["*.wild-tls.example.io"]
  ports: [{number: 80, name: http, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: wild-tls, namespace: istio-system}
spec:
  host: "*.example.io"
  trafficPolicy:
    tls: {mode: SIMPLE, caCertificates: /etc/ssl/ca.pem}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: off, namespace: shared}
spec:
  hosts: [off.example.net]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: off, namespace: shared}
spec:
  host: off.example.net
  trafficPolicy:
    tls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: bank, namespace: shared}
spec:
  hosts: [mtls.bank.example]
  ports: [{number: 8443, name: http, protocol: HTTP2}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bank, namespace: shared}
spec:
  host: mtls.bank.example
  trafficPolicy:
    tls: {mode: MUTUAL, credentialName: bank-client, subjectAltNames: [api.bank.example], sni: api.bank.example}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-system}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: open}
spec:
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: staging, labels: {egressd.io/mode: report}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: strict, namespace: staging}
spec:
  workloadSelector: {labels: {app: strict}}
  egress: [{hosts: ["shared/api.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: scoped}
spec:
  egress: [{hosts: ["shared/api.example.com", "*/*.eu.example.com", "./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: batch, namespace: scoped}
spec:
  workloadSelector: {labels: {app: batch}}
  outboundTrafficPolicy: {mode: ALLOW_ANY}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: db-only, namespace: scoped}
spec:
  workloadSelector: {labels: {app: reporting}}
  egress: [{hosts: ["shared/*.example.net"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: sealed}
spec:
  egress: [{hosts: ["~/*"]}]
`;

const config = parseConfigText(ALLOWLIST, 'decide.yaml');
const policy = compilePolicy(config);

type Row = [description: string, input: Partial<DecideInput> & { host: string }, want: Partial<Decision>];

const allow = (rule: string, matchedHost: string, extra: Partial<Decision> = {}): Partial<Decision> => ({
  allow: true,
  wouldDeny: false,
  reason: 'allowed_by_rule',
  rule,
  matchedHost,
  ...extra,
});
const deny = (reason: Decision['reason'], extra: Partial<Decision> = {}): Partial<Decision> => ({ allow: false, wouldDeny: false, reason, ...extra });

const ROWS: Row[] = [
  // Names
  ['an exact host on a listed port is allowed, with the port protocol', { host: 'api.example.com' }, allow('ServiceEntry/shared/exact', 'api.example.com', { protocol: 'TLS', mode: 'REGISTRY_ONLY' })],
  ['an exact host beats a wildcard that also covers it', { host: 'api.example.com', port: 80 }, allow('ServiceEntry/shared/exact', 'api.example.com', { protocol: 'HTTP' })],
  ['a port the exact rule lacks falls through to a wildcard that lists it', { host: 'api.example.com', port: 8443 }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['a wildcard covers one label below its suffix', { host: 'www.example.com' }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['a wildcard covers several labels below its suffix', { host: 'a.b.c.example.com' }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['a longer wildcard suffix beats a shorter one', { host: 'cdn.eu.example.com' }, allow('ServiceEntry/shared/wild-eu', '*.eu.example.com')],
  ['the shorter wildcard still serves a port the longer one lacks', { host: 'cdn.eu.example.com', port: 8443 }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['*.example.com does not cover example.com', { host: 'example.com' }, deny('no_matching_rule', { rule: undefined })],
  ['*.eu.example.com does not cover eu.example.com, *.example.com does', { host: 'eu.example.com' }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['a name that merely ends like the suffix is not covered', { host: 'notexample.com' }, deny('no_matching_rule')],
  ['an unknown host is denied with no rule', { host: 'evil.example.net' }, deny('no_matching_rule', { rule: undefined, matchedHost: undefined })],
  ['a listed host on an unlisted port is port_not_allowed, naming the rule', { host: 'private.example.org', port: 8443, sourceNamespace: 'team-a' }, deny('port_not_allowed', { rule: 'ServiceEntry/team-a/private', matchedHost: 'private.example.org' })],
  // Canonical forms
  ['names compare case-insensitively', { host: 'API.Example.COM' }, allow('ServiceEntry/shared/exact', 'api.example.com')],
  ['a trailing dot is ignored', { host: 'api.example.com.' }, allow('ServiceEntry/shared/exact', 'api.example.com')],
  ['an IDN matches its punycode rule', { host: 'xn--bcher-kva.example' }, allow('ServiceEntry/shared/idn', 'xn--bcher-kva.example')],
  ['a Unicode name matches the punycode of the rule', { host: 'BÜCHER.example.' }, allow('ServiceEntry/shared/idn', 'xn--bcher-kva.example')],
  ['a requested name with a * is never a match', { host: '*.example.com' }, deny('no_matching_rule')],
  ['an empty host is denied', { host: '' }, deny('no_matching_rule')],
  ['an empty first label does not slip under a wildcard', { host: '.example.com' }, deny('no_matching_rule')],
  ['an empty inner label does not slip under a wildcard', { host: 'a..example.com' }, deny('no_matching_rule')],
  ['a name of dots is denied', { host: '..' }, deny('no_matching_rule')],
  // exportTo
  ['exportTo "." keeps a rule in its own namespace', { host: 'private.example.org', sourceNamespace: 'team-a' }, allow('ServiceEntry/team-a/private', 'private.example.org')],
  ['exportTo "." hides a rule from other namespaces', { host: 'private.example.org', sourceNamespace: 'team-b' }, deny('not_exported', { rule: 'ServiceEntry/team-a/private' })],
  ['exportTo a list reaches the listed namespaces', { host: 'listed.example.org', sourceNamespace: 'team-c' }, allow('ServiceEntry/team-a/listed', 'listed.example.org')],
  ['exportTo a list leaves out the others, its own namespace included', { host: 'listed.example.org', sourceNamespace: 'team-a' }, deny('not_exported')],
  ['several rules for a host: the first visible one in namespace order wins', { host: 'dup.example.org', sourceNamespace: 'default' }, allow('ServiceEntry/b-second/dup', 'dup.example.org')],
  ['several rules for a host: the most specific namespace order is stable', { host: 'dup.example.org', sourceNamespace: 'a-first' }, allow('ServiceEntry/a-first/dup', 'dup.example.org')],
  ['several rules for a host: their ports add up', { host: 'dup.example.org', port: 8080, sourceNamespace: 'a-first' }, allow('ServiceEntry/c-third/dup', 'dup.example.org', { protocol: 'HTTP' })],
  // ServiceEntry workloadSelector
  ['a ServiceEntry workloadSelector admits a workload with all its labels', { host: 'selected.example.org', workloadLabels: { app: 'billing', tier: 'backend', version: 'v2' } }, allow('ServiceEntry/shared/selected', 'selected.example.org')],
  ['a ServiceEntry workloadSelector refuses a workload missing a label', { host: 'selected.example.org', workloadLabels: { app: 'billing' } }, deny('not_selected', { rule: 'ServiceEntry/shared/selected' })],
  ['a ServiceEntry workloadSelector refuses a workload without labels', { host: 'selected.example.org' }, deny('not_selected')],
  ['not_selected outranks not_exported as the reason', { host: 'selected.example.org', sourceNamespace: 'team-a', workloadLabels: { app: 'web' } }, deny('not_selected')],
  // Addresses
  ['an IP literal matches a CIDR of addresses', { host: '10.1.200.7', port: 5432 }, allow('ServiceEntry/shared/db', '10.1.0.0/16', { protocol: 'TCP' })],
  ['the longest prefix wins: a /32 beats the /16 around it', { host: '10.1.2.3', port: 5432 }, allow('ServiceEntry/shared/db-primary', '10.1.2.3')],
  ['a shorter prefix serves a port the longer one lacks', { host: '10.1.2.3', port: 5433 }, allow('ServiceEntry/shared/db-primary', '10.1.2.3')],
  ['an address outside every block is denied', { host: '10.2.0.1', port: 5432 }, deny('no_matching_rule')],
  ['an IPv4-mapped IPv6 literal matches the IPv4 block', { host: '::ffff:10.1.9.9', port: 5432 }, allow('ServiceEntry/shared/db', '10.1.0.0/16')],
  ['an IPv6 literal matches an IPv6 block', { host: '2001:db8:1::5' }, allow('ServiceEntry/shared/v6', '2001:db8::/32')],
  ['a bracketed IPv6 literal too', { host: '[2001:DB8::5]' }, allow('ServiceEntry/shared/v6', '2001:db8::/32')],
  ['an IPv6 literal outside the block is denied', { host: '2001:db9::1' }, deny('no_matching_rule')],
  ['a name nobody lists falls back to the dialled address', { host: 'replica.internal', address: '10.1.4.4', port: 5432 }, allow('ServiceEntry/shared/db', '10.1.0.0/16')],
  ['a listed name wins before the address is looked at', { host: 'api.example.com', address: '10.1.4.4' }, allow('ServiceEntry/shared/exact', 'api.example.com')],
  // Modes
  ['no Sidecar anywhere for the namespace: the root Sidecar applies', { host: 'evil.test', sourceNamespace: 'default' }, deny('no_matching_rule', { mode: 'REGISTRY_ONLY', sidecar: 'Sidecar/istio-system/default' })],
  ['ALLOW_ANY lets an unknown host through', { host: 'evil.test', sourceNamespace: 'open' }, { allow: true, wouldDeny: false, reason: 'allow_any', mode: 'ALLOW_ANY', rule: undefined }],
  ['ALLOW_ANY lets a wrong port through too', { host: 'api.example.com', port: 22, sourceNamespace: 'open' }, { allow: true, reason: 'allow_any', mode: 'ALLOW_ANY' }],
  ['ALLOW_ANY still reports the rule that matched', { host: 'api.example.com', sourceNamespace: 'open' }, allow('ServiceEntry/shared/exact', 'api.example.com', { mode: 'ALLOW_ANY' })],
  ['REPORT allows what REGISTRY_ONLY denies, marked wouldDeny, with the deny reason', { host: 'evil.test', sourceNamespace: 'staging' }, { allow: true, wouldDeny: true, reason: 'no_matching_rule', mode: 'REPORT', sidecar: 'Sidecar/staging/default' }],
  ['REPORT keeps the rule of a port miss', { host: 'api.example.com', port: 22, sourceNamespace: 'staging' }, { allow: true, wouldDeny: true, reason: 'port_not_allowed', rule: 'ServiceEntry/shared/exact' }],
  ['REPORT does not mark what is allowed', { host: 'api.example.com', sourceNamespace: 'staging' }, allow('ServiceEntry/shared/exact', 'api.example.com', { mode: 'REPORT' })],
  ['a selector Sidecar without a mode inherits REPORT from its namespace', { host: 'www.example.com', sourceNamespace: 'staging', workloadLabels: { app: 'strict' } }, { allow: true, wouldDeny: true, reason: 'not_selected', mode: 'REPORT', sidecar: 'Sidecar/staging/strict' }],
  // Sidecar egress hosts
  ['Sidecar egress ns/host lets the workload see that host', { host: 'api.example.com', sourceNamespace: 'scoped' }, allow('ServiceEntry/shared/exact', 'api.example.com', { sidecar: 'Sidecar/scoped/default' })],
  ['Sidecar egress */*.suffix lets the workload see names under it', { host: 'x.eu.example.com', sourceNamespace: 'scoped' }, allow('ServiceEntry/shared/wild-eu', '*.eu.example.com')],
  ['Sidecar egress hides what it does not list: not_selected', { host: 'www.example.com', sourceNamespace: 'scoped' }, deny('not_selected', { rule: 'ServiceEntry/shared/wild' })],
  ['Sidecar egress narrows a wildcard rule to the names it lists', { host: 'api.example.com', port: 8443, sourceNamespace: 'scoped' }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['Sidecar egress ./* is the namespace of the Sidecar, not of the rule', { host: 'dup.example.org', sourceNamespace: 'scoped' }, deny('not_selected')],
  ['a selector Sidecar replaces the namespace default for its workloads', { host: 'www.example.com', sourceNamespace: 'scoped', workloadLabels: { app: 'batch' } }, allow('ServiceEntry/shared/wild', '*.example.com', { mode: 'ALLOW_ANY', sidecar: 'Sidecar/scoped/batch' })],
  ['a selector Sidecar with egress scopes its workloads', { host: 'db.example.net', port: 5432, sourceNamespace: 'scoped', workloadLabels: { app: 'reporting' } }, allow('ServiceEntry/shared/db', 'db.example.net', { sidecar: 'Sidecar/scoped/db-only' })],
  ['a selector Sidecar with egress scopes address matches by the rule hosts', { host: '10.1.0.9', port: 5432, sourceNamespace: 'scoped', workloadLabels: { app: 'reporting' } }, allow('ServiceEntry/shared/db', '10.1.0.0/16')],
  ['an address match is hidden when no rule host is in the Sidecar egress', { host: '10.1.0.9', port: 5432, sourceNamespace: 'scoped' }, deny('not_selected')],
  ['workloads the selector does not pick get the namespace default', { host: 'www.example.com', sourceNamespace: 'scoped', workloadLabels: { app: 'web' } }, deny('not_selected', { sidecar: 'Sidecar/scoped/default' })],
  ['egress ~/* sees nothing', { host: 'api.example.com', sourceNamespace: 'sealed' }, deny('not_selected', { mode: 'REGISTRY_ONLY' })],
  // TLS origination
  ['TLS and TCP destinations pass through: no origination', { host: 'api.example.com' }, { allow: true, tls: undefined, upstream: { resolution: 'DNS', port: 443 } }],
  ['HTTP with targetPort 443 originates TLS SIMPLE to 443', { host: 'origin.example.dev', port: 80 }, { allow: true, protocol: 'HTTP', tls: { mode: 'SIMPLE', port: 443, subjectAltNames: ['origin.example.dev'], source: 'ServiceEntry/shared/origin' }, upstream: { resolution: 'DNS', port: 443 } }],
  ['a DestinationRule port-level SIMPLE originates on that port with its SNI', { host: 'dr.example.io', port: 80 }, { allow: true, tls: { mode: 'SIMPLE', port: 80, sni: 'sni.example.io', source: 'DestinationRule/shared/dr-shared' } }],
  ['a DestinationRule port-level setting leaves the other ports alone', { host: 'dr.example.io', port: 443 }, { allow: true, tls: undefined }],
  ["the caller's own namespace DestinationRule wins over the rule's namespace", { host: 'dr.example.io', port: 80, sourceNamespace: 'team-a' }, { allow: true, tls: undefined }],
  ['a DestinationRule exported only to its namespace is not used elsewhere', { host: 'dr.example.io', port: 80, sourceNamespace: 'team-b' }, { allow: true, tls: { mode: 'SIMPLE', port: 80, sni: 'sni.example.io', source: 'DestinationRule/shared/dr-shared' } }],
  ['a wildcard DestinationRule in the root namespace covers a wildcard rule', { host: 'a.wild-tls.example.io', port: 80 }, { allow: true, tls: { mode: 'SIMPLE', port: 80, caCertificates: '/etc/ssl/ca.pem', source: 'DestinationRule/istio-system/wild-tls' } }],
  ['a DestinationRule DISABLE overrides HTTP with targetPort 443', { host: 'off.example.net', port: 80 }, { allow: true, tls: undefined, upstream: { resolution: 'NONE', port: 443 } }],
  ['MUTUAL carries the credential, SANs and SNI', { host: 'mtls.bank.example', port: 8443 }, { allow: true, protocol: 'HTTP2', tls: { mode: 'MUTUAL', port: 8443, sni: 'api.bank.example', subjectAltNames: ['api.bank.example'], credentialName: 'bank-client', source: 'DestinationRule/shared/bank' } }],
  ['STATIC endpoints come with the port to dial on each', { host: 'primary.db.example.net', port: 5433 }, { allow: true, upstream: { resolution: 'STATIC', port: 5433, endpoints: [{ address: '10.1.2.3', port: 15433 }] } }],
  ['the upstream carries the rule addresses, canonical, for checking a dialled IP', { host: 'db.example.net', port: 5432 }, { allow: true, upstream: { resolution: 'NONE', port: 5432, addresses: ['10.1.0.0/16'] } }],
  ['a match by address carries the addresses of the rule that matched', { host: '2001:db8::7' }, { allow: true, matchedHost: '2001:db8::/32', upstream: { resolution: 'NONE', port: 443, addresses: ['2001:db8::/32'] } }],
  ['a rule without addresses has none in its upstream', { host: 'api.example.com' }, { allow: true, upstream: { resolution: 'DNS', port: 443, addresses: undefined } }],
  ['a denial originates nothing', { host: 'origin.example.dev', port: 81 }, { allow: false, tls: undefined, upstream: undefined, protocol: undefined }],
];

for (const [description, input, want] of ROWS) {
  test(description, (t) => {
    const decision = policy.decide({ port: 443, sourceNamespace: 'default', ...input });
    t.like(decision, want);
  });
}

test('the allowlist used by the table is valid', (t) => {
  t.deepEqual(config.errors, []);
});

test('decide is deterministic and leaves its input alone', (t) => {
  const input: DecideInput = Object.freeze({ host: 'Dup.Example.org.', port: 443, sourceNamespace: 'default', workloadLabels: Object.freeze({ app: 'x' }) });
  const first = policy.decide(input);
  for (let i = 0; i < 100; i++) t.deepEqual(policy.decide(input), first);
  t.is(input.host, 'Dup.Example.org.');
});

test('the same allowlist compiled from reordered documents decides the same', (t) => {
  const reordered = ALLOWLIST.split('\n---\n').reverse().join('\n---\n');
  const other = compilePolicy(parseConfigText(reordered, 'reordered.yaml'));
  for (const [, input] of ROWS) {
    const full = { port: 443, sourceNamespace: 'default', ...input };
    t.deepEqual(other.decide(full), policy.decide(full), input.host);
  }
});

test('the root namespace Sidecar is the mesh default, and the root namespace is an option', (t) => {
  const text = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: mesh-config}
spec: {outboundTrafficPolicy: {mode: ALLOW_ANY}}`;
  const input = { host: 'anything.test', port: 443, sourceNamespace: 'default' };
  t.like(compilePolicy(parseConfigText(text, 'root.yaml', { rootNamespace: 'mesh-config' })).decide(input), { allow: true, mode: 'ALLOW_ANY', sidecar: 'Sidecar/mesh-config/default' });
  t.like(compilePolicy(parseConfigText(text, 'root.yaml')).decide(input), { allow: false, mode: 'REGISTRY_ONLY', sidecar: undefined });
});

test('with no Sidecar at all the mode is REGISTRY_ONLY', (t) => {
  const empty = compilePolicy(parseConfigText('', 'empty.yaml'));
  t.like(empty.decide({ host: 'api.example.com', port: 443, sourceNamespace: 'default' }), { allow: false, reason: 'no_matching_rule', mode: 'REGISTRY_ONLY', sidecar: undefined });
});

/** decideName judges a name alone, as a DNS query asks: any port a visible rule lists will do. */
const NAME_ROWS: [description: string, input: { host: string; sourceNamespace?: string; workloadLabels?: Record<string, string> }, want: Partial<Decision>][] = [
  ['decideName: a listed name is allowed whatever its ports', { host: 'api.example.com' }, allow('ServiceEntry/shared/exact', 'api.example.com', { protocol: undefined, tls: undefined, upstream: undefined })],
  ['decideName: a wildcard covers names below it', { host: 'x.eu.example.com' }, allow('ServiceEntry/shared/wild-eu', '*.eu.example.com')],
  ['decideName: the apex of a wildcard is not covered', { host: 'eu.example.com.' }, allow('ServiceEntry/shared/wild', '*.example.com')],
  ['decideName: a rule not exported to the namespace', { host: 'private.example.org', sourceNamespace: 'team-b' }, deny('not_exported', { rule: 'ServiceEntry/team-a/private' })],
  ['decideName: a workloadSelector that leaves the workload out', { host: 'selected.example.org' }, deny('not_selected')],
  ['decideName: Sidecar egress hosts apply', { host: 'www.example.com', sourceNamespace: 'scoped' }, deny('not_selected')],
  ['decideName: an unknown name', { host: 'evil.test' }, deny('no_matching_rule', { rule: undefined })],
  ['decideName: an unknown name under ALLOW_ANY', { host: 'evil.test', sourceNamespace: 'open' }, { allow: true, reason: 'allow_any' }],
  ['decideName: an unknown name under REPORT', { host: 'evil.test', sourceNamespace: 'staging' }, { allow: true, wouldDeny: true, reason: 'no_matching_rule' }],
  ['decideName: an IP literal is matched against addresses, as by decide', { host: '10.1.2.3' }, allow('ServiceEntry/shared/db-primary', '10.1.2.3')],
];

for (const [description, input, want] of NAME_ROWS) {
  test(description, (t) => {
    t.like(policy.decideName({ sourceNamespace: 'default', ...input }), want);
  });
}
