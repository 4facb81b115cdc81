import test from 'ava';
import { judgeName, isClusterName } from '../../../src/dns/judge.ts';
import { LocalNames } from '../../../src/dns/local-names.ts';
import { allowlist } from './_policy.ts';

const policy = allowlist();

test('ServiceEntry addresses are answered (host addresses only); STATIC endpoints when there are none', (t) => {
  const local = new LocalNames(policy.destinations(), { autoAllocate: false });
  t.deepEqual(local.lookup('ServiceEntry/default/fixed', 'fixed.example.test'), { ipv4: ['192.0.2.20'], ipv6: ['2001:db8::20'], source: 'addresses' });
  t.deepEqual(local.lookup('ServiceEntry/default/fixed', '*.fixed.example.test'), { ipv4: ['192.0.2.20'], ipv6: ['2001:db8::20'], source: 'addresses' });
  t.deepEqual(local.lookup('ServiceEntry/default/static', 'static.example.test'), { ipv4: ['192.0.2.31', '192.0.2.32'], ipv6: ['2001:db8::31'], source: 'endpoints' });
  t.is(local.lookup('ServiceEntry/default/wide', 'wide.example.test'), undefined, 'a /24 names no single destination');
  t.is(local.lookup('ServiceEntry/default/api', 'api.example.test'), undefined, 'no VIP without auto-allocation');
  t.is(local.vips.size, 0);
});

test('with auto-allocation: a VIP for exact hosts without addresses, not for wildcards, resolution NONE or address ranges', (t) => {
  const local = new LocalNames(policy.destinations(), { autoAllocate: true });
  const api = local.lookup('ServiceEntry/default/api', 'api.example.test');
  t.is(api?.source, 'vip');
  t.deepEqual(api?.ipv4, ['240.240.146.14']);
  t.is(local.vips.hostOf('240.240.146.14'), 'api.example.test');
  t.is(local.lookup('ServiceEntry/default/wild-dns', '*.lb.example.test'), undefined, 'a wildcard names no single host');
  t.is(local.lookup('ServiceEntry/default/wild', '*.wild.example.test'), undefined);
  t.is(local.lookup('ServiceEntry/default/passthrough', 'none.example.test'), undefined);
  t.is(local.lookup('ServiceEntry/default/wide', 'wide.example.test'), undefined);
  t.is(local.lookup('ServiceEntry/billing/private', 'billing.example.test')?.source, 'vip', 'VIPs cover every namespace, so that all pods agree');
});

const ctx = (namespace: string, autoAllocate = true) => ({
  policy,
  local: new LocalNames(policy.destinations(), { autoAllocate }),
  namespace,
  labels: {},
  clusterDomain: 'cluster.local',
});

test('judgeName: local answers, forwarding, denial by mode and visibility, cluster names never judged', (t) => {
  t.like(judgeName('fixed.example.test', ctx('default')), { action: 'local', record: { source: 'addresses' } });
  t.like(judgeName('x.fixed.example.test', ctx('default')), { action: 'local', decision: { matchedHost: '*.fixed.example.test' } });
  t.like(judgeName('api.example.test', ctx('default')), { action: 'local', record: { source: 'vip' } });
  t.like(judgeName('api.example.test', ctx('default', false)), { action: 'forward', cluster: false, decision: { reason: 'allowed_by_rule' } });
  t.like(judgeName('a.wild.example.test', ctx('default')), { action: 'forward', decision: { matchedHost: '*.wild.example.test' } });
  t.like(judgeName('evil.test', ctx('default')), { action: 'deny', decision: { reason: 'no_matching_rule', mode: 'REGISTRY_ONLY' } });
  t.like(judgeName('billing.example.test', ctx('default')), { action: 'deny', decision: { reason: 'not_exported' } });
  t.like(judgeName('billing.example.test', ctx('billing')), { action: 'local' });
  t.like(judgeName('evil.test', ctx('lenient')), { action: 'forward', decision: { reason: 'allow_any', wouldDeny: false } });
  t.like(judgeName('evil.test', ctx('audit')), { action: 'forward', decision: { mode: 'REPORT', wouldDeny: true } });
  t.deepEqual(judgeName('db.shop.svc.cluster.local', ctx('default')), { action: 'forward', cluster: true });
  t.deepEqual(judgeName('db.shop.svc.cluster.local', { ...ctx('default'), policy: undefined, local: undefined }), { action: 'forward', cluster: true });
  t.deepEqual(judgeName('api.example.test', { ...ctx('default'), policy: undefined, local: undefined }), { action: 'unavailable' });
});

test('cluster names: the domain and names under it, not names that merely end the same way', (t) => {
  t.true(isClusterName('cluster.local', 'cluster.local'));
  t.true(isClusterName('kubernetes.default.svc.cluster.local', 'cluster.local'));
  t.false(isClusterName('evilcluster.local', 'cluster.local'));
  t.false(isClusterName('cluster.local.evil.test', 'cluster.local'));
});
