import test from 'ava';
import { toolsFor } from '../../../src/iptables/restore.ts';

test('each backend and family has its own save/restore pair', (t) => {
  t.deepEqual(toolsFor('default', 'ipv4'), { save: 'iptables-save', restore: 'iptables-restore' });
  t.deepEqual(toolsFor('default', 'ipv6'), { save: 'ip6tables-save', restore: 'ip6tables-restore' });
  t.deepEqual(toolsFor('nft', 'ipv4'), { save: 'iptables-nft-save', restore: 'iptables-nft-restore' });
  t.deepEqual(toolsFor('legacy', 'ipv6'), { save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' });
});
