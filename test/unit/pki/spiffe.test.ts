import test from 'ava';
import { identityProblem, parseSpiffeId, spiffeId } from '../../../src/pki/spiffe.ts';

test('SPIFFE IDs of Kubernetes workloads round-trip', (t) => {
  const id = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart.v2' };
  t.is(spiffeId(id), 'spiffe://cluster.local/ns/shop/sa/cart.v2');
  t.deepEqual(parseSpiffeId(spiffeId(id)), id);
});

const bad: Record<string, string> = {
  'an upper-case trust domain': 'spiffe://Cluster.local/ns/a/sa/b',
  'another scheme': 'https://cluster.local/ns/a/sa/b',
  'a path of another shape': 'spiffe://cluster.local/workload/a',
  'an extra segment': 'spiffe://cluster.local/ns/a/sa/b/c',
  'a namespace that is not a DNS label': 'spiffe://cluster.local/ns/A_b/sa/b',
  'a dot-dot service account': 'spiffe://cluster.local/ns/a/sa/..',
  'an empty service account': 'spiffe://cluster.local/ns/a/sa/',
};
for (const [name, uri] of Object.entries(bad)) {
  test(`parseSpiffeId refuses ${name}`, (t) => {
    t.is(parseSpiffeId(uri), undefined);
  });
}

test('spiffeId names the bad part', (t) => {
  t.regex(identityProblem({ trustDomain: 'td', namespace: 'Bad', serviceAccount: 'sa' }) ?? '', /namespace "Bad"/);
  t.throws(() => spiffeId({ trustDomain: 'td', namespace: 'ns', serviceAccount: '' }), { message: /service account/ });
});
