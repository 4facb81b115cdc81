import test from 'ava';
import { overrideTable, parseResolveOverride } from '../../../src/core/resolve-override.ts';

test("--resolve like curl's: host:port:address for one port, host:address for every port, IPv6 bracketed or not", (t) => {
  t.deepEqual(parseResolveOverride('API.example.test:443:127.0.0.1'), { host: 'api.example.test', port: 443, address: '127.0.0.1' });
  t.deepEqual(parseResolveOverride('api.example.test:80:[::1]'), { host: 'api.example.test', port: 80, address: '::1' });
  t.deepEqual(parseResolveOverride('api.example.test:80:::1'), { host: 'api.example.test', port: 80, address: '::1' });
  t.deepEqual(parseResolveOverride('api.example.test:443:[fd00::7]'), { host: 'api.example.test', port: 443, address: 'fd00::7' });
  t.deepEqual(parseResolveOverride(' API.example.test.:10.0.0.7 '), { host: 'api.example.test', address: '10.0.0.7' });
  t.deepEqual(parseResolveOverride('api.example.test:fd00::7'), { host: 'api.example.test', address: 'fd00::7' });
  t.deepEqual(parseResolveOverride('api.example.test:[2001:db8::1]'), { host: 'api.example.test', address: '2001:db8::1' });
  t.deepEqual(parseResolveOverride('api.example.test:1::2'), { host: 'api.example.test', address: '1::2' }, 'not port 1 and an invalid address');
});

for (const bad of ['api.example.test', 'api.example.test:443', 'api.example.test:0:127.0.0.1', 'api.example.test:443:not-an-ip', ':443:127.0.0.1', ':10.0.0.7', 'a b:10.0.0.7', '*.example.test:10.0.0.7']) {
  test(`--resolve "${bad}" is refused with the expected form`, (t) => {
    t.throws(() => parseResolveOverride(bad), { code: 'EGRESSD_ERR_USAGE', message: /expected host:port:address \(or host:address for every port\)/ } as never);
  });
}

test('a port-specific entry wins over an every-port one; without a port every entry of the name applies', (t) => {
  const table = overrideTable(['a.test:443:10.0.0.1', 'a.test:10.0.0.2', 'b.test:443:10.0.0.3'].map(parseResolveOverride));
  t.deepEqual(table('A.test', 443), ['10.0.0.1']);
  t.deepEqual(table('a.test', 80), ['10.0.0.2']);
  t.is(table('b.test', 80), undefined);
  t.deepEqual(table('a.test'), ['10.0.0.1', '10.0.0.2']);
  t.is(table('c.test', 443), undefined);
});
