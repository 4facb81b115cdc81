import test from 'ava';
import { parseLabelPairs, parseLabelsFile } from '../../../src/agent/labels.ts';

test('--labels pairs, including prefixed keys and empty values', (t) => {
  t.deepEqual(parseLabelPairs(['app=web', 'app.kubernetes.io/name=shop', 'canary=']), { app: 'web', 'app.kubernetes.io/name': 'shop', canary: '' });
});

test('--labels without = or with an invalid key name the pair', (t) => {
  t.throws(() => parseLabelPairs(['app']), { code: 'EGRESSD_ERR_USAGE', message: /"app" is not key=value/ } as never);
  t.throws(() => parseLabelPairs(['-bad=x']), { code: 'EGRESSD_ERR_USAGE' } as never);
});

test('a downward API labels file as the kubelet writes it, Go-quoted values included', (t) => {
  const text = 'app="web"\npod-template-hash="5d8f9c"\nnote="say \\"hi\\"\\tnow\\u00e9"\n\n';
  t.deepEqual(parseLabelsFile(text, '/etc/podinfo/labels'), { app: 'web', 'pod-template-hash': '5d8f9c', note: 'say "hi"\tnowé' });
});

test('a malformed labels file line is reported with file and line', (t) => {
  t.throws(() => parseLabelsFile('app="web"\nbroken\n', '/etc/podinfo/labels'), { message: /\/etc\/podinfo\/labels:2: expected key="value"/ });
  t.throws(() => parseLabelsFile('app="a"b"\n', 'f'), { message: /f:1/ });
  t.throws(() => parseLabelsFile('app="bad \\q escape"\n', 'f'), { message: /f:1/ });
});
