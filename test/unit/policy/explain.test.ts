import test from 'ava';
import { compilePolicy, parseConfigText, type NearMiss } from '../../../src/policy/index.ts';

const policy = compilePolicy(
  parseConfigText(
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: stripe, namespace: payments}
spec:
  hosts: [api.stripe.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  exportTo: ["."]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: stripe-files, namespace: payments}
spec:
  hosts: [files.stripe.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  workloadSelector: {labels: {app: checkout}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s3, namespace: data}
spec:
  hosts: ["*.s3.amazonaws.com"]
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: s3-http, namespace: data}
spec:
  hosts: ["*.s3.amazonaws.com"]
  ports: [{number: 80, name: http, protocol: HTTP, targetPort: 443}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: locked}
spec:
  egress: [{hosts: ["./*"]}]
`,
    'explain.yaml',
  ),
);

const whys = (misses: readonly NearMiss[]): string[][] => misses.map((m) => [m.rule, m.why, m.message]);

test('an allowed request names the rule, its position and ports, and no near misses for it', (t) => {
  const e = policy.explain({ host: 'api.stripe.com', port: 443, sourceNamespace: 'payments' });
  t.true(e.decision.allow);
  t.deepEqual(e.matched, {
    rule: 'ServiceEntry/payments/stripe',
    matchedHost: 'api.stripe.com',
    ports: [{ number: 443, protocol: 'TLS', name: 'tls' }],
    source: { file: 'explain.yaml', line: 1, col: 1 },
  });
  t.deepEqual(e.nearMisses, []);
});

test('wrong port: the rule is a near miss listing its ports', (t) => {
  const e = policy.explain({ host: 'api.stripe.com', port: 80, sourceNamespace: 'payments' });
  t.deepEqual(whys(e.nearMisses), [['ServiceEntry/payments/stripe', 'port_not_allowed', 'port 80 is not declared (ports: 443/TLS)']]);
});

test('not exported to the namespace, saying which namespaces it is exported to', (t) => {
  const e = policy.explain({ host: 'API.stripe.com.', port: 443, sourceNamespace: 'web' });
  t.is(e.input.host, 'api.stripe.com');
  t.deepEqual(whys(e.nearMisses), [['ServiceEntry/payments/stripe', 'not_exported', 'exportTo [. (payments)] does not include namespace web']]);
});

test('workloadSelector mismatch, with both label sets', (t) => {
  const e = policy.explain({ host: 'files.stripe.com', port: 443, sourceNamespace: 'payments', workloadLabels: { app: 'web' } });
  t.deepEqual(whys(e.nearMisses), [['ServiceEntry/payments/stripe-files', 'workload_selector', 'workloadSelector app=checkout does not select a workload with labels app=web']]);
});

test('Sidecar egress hosts that leave the rule out', (t) => {
  const e = policy.explain({ host: 'files.stripe.com', port: 443, sourceNamespace: 'locked', workloadLabels: { app: 'checkout' } });
  t.deepEqual(whys(e.nearMisses), [['ServiceEntry/payments/stripe-files', 'sidecar_egress', 'Sidecar/locked/default egress hosts [./*] do not include payments/files.stripe.com']]);
});

test('a wildcard does not cover its apex', (t) => {
  const e = policy.explain({ host: 's3.amazonaws.com', port: 443, sourceNamespace: 'data' });
  t.false(e.decision.allow);
  t.deepEqual(whys(e.nearMisses), [
    ['ServiceEntry/data/s3', 'wildcard_apex', '*.s3.amazonaws.com covers names under s3.amazonaws.com, not s3.amazonaws.com itself'],
    ['ServiceEntry/data/s3-http', 'wildcard_apex', '*.s3.amazonaws.com covers names under s3.amazonaws.com, not s3.amazonaws.com itself'],
  ]);
});

test('rules for the same pattern that did not apply are listed beside the one that did', (t) => {
  const e = policy.explain({ host: 'bucket.s3.amazonaws.com', port: 80, sourceNamespace: 'data' });
  t.is(e.matched?.rule, 'ServiceEntry/data/s3-http');
  t.like(e.decision, { tls: { mode: 'SIMPLE', port: 443, source: 'ServiceEntry/data/s3-http' } });
  t.deepEqual(whys(e.nearMisses), [['ServiceEntry/data/s3', 'port_not_allowed', 'port 80 is not declared (ports: 443/TLS)']]);
});

test('an unknown name in a known domain points at the rules of that domain', (t) => {
  const e = policy.explain({ host: 'dashboard.stripe.com', port: 443, sourceNamespace: 'payments' });
  t.deepEqual(
    e.nearMisses.map((m) => [m.matchedHost, m.why]),
    [
      ['api.stripe.com', 'same_domain'],
      ['files.stripe.com', 'same_domain'],
    ],
  );
});

test('nothing close: no near misses', (t) => {
  const e = policy.explain({ host: 'example.org', port: 443, sourceNamespace: 'payments' });
  t.deepEqual(e.nearMisses, []);
  t.is(e.decision.reason, 'no_matching_rule');
});
