import test from 'ava';
import type { AuditRecord } from '../../../src/core/audit.ts';
import { formatAuditTable } from '../../../src/cli/audit-view.ts';

const base: AuditRecord = {
  time: '2026-11-22T04:00:00.000Z', decision: 'allow', reason: 'allowed_by_rule', rule: 'ServiceEntry/default/demo-api', mode: 'REGISTRY_ONLY',
  would_deny: false, host: 'api.example.test', host_source: 'sni', sni: 'api.example.test', alpn: ['http/1.1'], port: 443, dst: '127.0.0.1:443',
  src: '127.0.0.1:50000', protocol: 'tls', http: null, route: 'direct', namespace: 'default', component: 'agent', listener: 'proxy',
  bytes_sent: 517, bytes_received: 3300, duration_ms: 12.4, error: null, identity: null, replica: null, failover: null, connection_id: null, request_id: null,
};

test('each record is one row under the header, columns aligned', (t) => {
  const denied: AuditRecord = { ...base, decision: 'deny', reason: 'no_matching_rule', rule: null, host: 'exfil.attacker.test', bytes_sent: 0, bytes_received: 0 };
  const lines = formatAuditTable([base, denied]).split('\n');
  t.is(lines.length, 3);
  t.true(lines[0]!.startsWith('DECISION'));
  t.regex(lines[1]!, /^ALLOW\s+api\.example\.test:443\s+tls\(sni\)\s+allowed_by_rule\s+ServiceEntry\/default\/demo-api\s+direct\s+517B\/3\.2KiB\s+12$/);
  t.regex(lines[2]!, /^DENY\s+exfil\.attacker\.test:443 .* no_matching_rule\s+-\s+direct\s+0B\/0B/);
  t.is(lines[1]!.indexOf('tls'), lines[0]!.indexOf('PROTOCOL'));
});

test('report mode marks would-deny allowances, HTTP details and errors are shown', (t) => {
  const row = formatAuditTable([
    { ...base, would_deny: true, protocol: 'http', host_source: 'http', http: { method: 'GET', path: '/x', status: 200 }, error: 'upstream reset', reason: 'allow_any' },
  ]).split('\n')[1]!;
  t.regex(row, /^ALLOW\*/);
  t.regex(row, /http\(http\) GET \/x 200/);
  t.regex(row, /allow_any: upstream reset/);
});

test('wide adds the component first, then replica and identity last, for reading agent and gateway records together', (t) => {
  const gateway: AuditRecord = { ...base, component: 'gateway', replica: 'egress-gateway-0', identity: 'spiffe://cluster.local/ns/default/sa/checkout', route: 'gateway' };
  const [header, row] = formatAuditTable([gateway], { wide: true }).split('\n');
  t.regex(header!, /^COMPONENT\s+DECISION .* MS\s+REPLICA\s+IDENTITY$/);
  t.regex(row!, /^gateway\s+ALLOW .* egress-gateway-0\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/checkout$/);
});
