import test from 'ava';
import { chmod, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatProblem, loadConfig, parseConfigText, parseConfigTexts, type Problem } from '../../../src/policy/index.ts';

const SE = (name: string, extra = '', ns = 'default'): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: ${name}
  namespace: ${ns}
spec:
  hosts: [${name}.example.com]
  ports:
    - number: 443
      name: tls
      protocol: TLS
${extra}`;

const lines = (problems: readonly Problem[]): string[] => problems.map(formatProblem);

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'egressd-policy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('multi-document text: every document is read, normalized and frozen', (t) => {
  const config = parseConfigText(`${SE('one')}---\n${SE('two', '', 'team')}`, 'multi.yaml');
  t.deepEqual(config.errors, []);
  t.deepEqual(
    config.serviceEntries.map((e) => [e.id, e.hosts, e.exportTo, e.resolution, e.location]),
    [
      ['ServiceEntry/default/one', ['one.example.com'], ['*'], 'NONE', 'MESH_EXTERNAL'],
      ['ServiceEntry/team/two', ['two.example.com'], ['*'], 'NONE', 'MESH_EXTERNAL'],
    ],
  );
  t.deepEqual(config.serviceEntries[0]!.source, { file: 'multi.yaml', line: 1, col: 1 });
  t.true(Object.isFrozen(config.serviceEntries[0]!.hosts));
});

test('hosts are normalized: case, trailing dot, IDN to punycode', (t) => {
  const config = parseConfigText(SE('x').replace('[x.example.com]', '["API.Example.COM.", "*.Bücher.example"]'), 'norm.yaml');
  t.deepEqual(config.errors, []);
  t.deepEqual(config.serviceEntries[0]!.hosts, ['api.example.com', '*.xn--bcher-kva.example']);
});

test('the three API versions are read alike; other versions are refused', (t) => {
  for (const version of ['v1', 'v1beta1', 'v1alpha3']) {
    const config = parseConfigText(SE('v').replace('networking.istio.io/v1', `networking.istio.io/${version}`), `${version}.yaml`);
    t.deepEqual(config.errors, [], version);
    t.is(config.serviceEntries[0]!.apiVersion, `networking.istio.io/${version}`);
  }
  const v2 = parseConfigText(SE('v').replace('networking.istio.io/v1', 'networking.istio.io/v2'), 'v2.yaml');
  t.deepEqual(lines(v2.errors), ['v2.yaml:1:13: ServiceEntry/default/v: apiVersion: "networking.istio.io/v2" is not supported: use networking.istio.io/v1, v1beta1 or v1alpha3']);
});

test('other kinds are skipped with a notice, not an error', (t) => {
  const config = parseConfigText('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: kube-system}\n---\n' + SE('a'), 'mixed.yaml');
  t.deepEqual(config.errors, []);
  t.deepEqual(lines(config.notices), ['mixed.yaml:1:1: notice: ConfigMap/kube-system/cm: skipped: egressd reads only ServiceEntry, DestinationRule and Sidecar of networking.istio.io, not ConfigMap of v1']);
  t.is(config.serviceEntries.length, 1);
});

test('a v1 List (kubectl get -o yaml) is read item by item, positions inside the list', (t) => {
  const text = `apiVersion: v1
kind: List
items:
  - apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: listed}
    spec:
      hosts: [listed.example.com]
      ports: [{number: 0, name: tls, protocol: TLS}]
`;
  const config = parseConfigText(text, 'list.yaml');
  t.deepEqual(lines(config.errors), ['list.yaml:9:24: ServiceEntry/default/listed: spec.ports[0].number: must be between 1 and 65535']);
});

test('resources without metadata.namespace get the default namespace, which is an option', (t) => {
  const text = SE('a').replace('  namespace: default\n', '');
  t.is(parseConfigText(text, 'a.yaml').serviceEntries[0]!.id, 'ServiceEntry/default/a');
  t.is(parseConfigText(text, 'a.yaml', { defaultNamespace: 'egress' }).serviceEntries[0]!.id, 'ServiceEntry/egress/a');
});

test('malformed YAML names the file, line and column, and the other files still load', (t) => {
  const config = parseConfigTexts([
    { filename: 'bad.yaml', text: 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x\n' },
    { filename: 'good.yaml', text: SE('good') },
  ]);
  t.is(config.errors.length, 1);
  t.regex(formatProblem(config.errors[0]!), /^bad\.yaml:\d+:\d+: invalid YAML: /);
  t.is(config.serviceEntries.length, 1);
});

test('a document that is not a mapping, or lacks apiVersion and kind, is an error', (t) => {
  const config = parseConfigText('- just\n- a list\n---\nmetadata: {name: x}\n', 'odd.yaml');
  t.deepEqual(lines(config.errors), [
    'odd.yaml:1:1: a document must be a Kubernetes resource: a mapping with apiVersion and kind',
    'odd.yaml:4:1: <no kind>/default/x: apiVersion: required',
    'odd.yaml:4:1: <no kind>/default/x: kind: required',
  ]);
});

test('every problem of a resource is reported at once, with the field position', (t) => {
  const text = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: Bad_Name
spec:
  hosts: ["*", "*.example.com"]
  addresses: [192.168.0.0/16, fe80::/129]
  ports:
    - {number: 443, name: tls, protocol: TLS}
    - {number: 443, name: TLS2, protocol: tls}
  resolution: DNS
  exportTo: ["*", "."]
`;
  t.deepEqual(lines(parseConfigText(text, 'many.yaml').errors), [
    'many.yaml:4:9: ServiceEntry/default/Bad_Name: metadata.name: "Bad_Name" must be a DNS-1123 subdomain',
    'many.yaml:6:11: ServiceEntry/default/Bad_Name: spec.hosts[0]: a bare "*" would allow every destination; list the hosts, or use outboundTrafficPolicy ALLOW_ANY',
    'many.yaml:6:16: ServiceEntry/default/Bad_Name: spec.hosts[1]: wildcard host "*.example.com" cannot be resolved with resolution DNS; use resolution NONE',
    'many.yaml:7:31: ServiceEntry/default/Bad_Name: spec.addresses[1]: "fe80::/129" is not a valid IP address or CIDR',
    'many.yaml:10:16: ServiceEntry/default/Bad_Name: spec.ports[1].number: duplicate port number 443 (also spec.ports[0])',
    'many.yaml:10:27: ServiceEntry/default/Bad_Name: spec.ports[1].name: "TLS2" must be a DNS-1123 label',
    'many.yaml:12:13: ServiceEntry/default/Bad_Name: spec.exportTo: "*" exports to every namespace and cannot be combined with other entries',
  ]);
});

test('protocols are accepted in any case and normalized', (t) => {
  const config = parseConfigText(SE('p').replace('protocol: TLS', 'protocol: https'), 'p.yaml');
  t.deepEqual(config.errors, []);
  t.is(config.serviceEntries[0]!.ports[0]!.protocol, 'HTTPS');
});

test('a resource with errors is left out; the rest are kept', (t) => {
  const config = parseConfigText(`${SE('ok')}---\n${SE('broken').replace('number: 443', 'number: 0')}`, 'keep.yaml');
  t.is(config.errors.length, 1);
  t.deepEqual(config.serviceEntries.map((e) => e.name), ['ok']);
});

test('fields egressd does not implement are warnings that name them; Istio-unknown fields are errors', (t) => {
  const text = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: web}
spec:
  ingress: []
  egress:
    - port: {number: 443, protocol: TLS, name: tls}
      hosts: ["./*"]
  outboundTrafficPolicy:
    mode: REGISTRY_ONLY
    egressProxy: {host: proxy.example.com}
  frobnicate: true
`;
  const config = parseConfigText(text, 'sidecar.yaml');
  t.deepEqual(lines(config.errors), ['sidecar.yaml:12:3: Sidecar/web/default: spec.frobnicate: unknown field "frobnicate" (not part of Sidecar)']);
  t.deepEqual(lines(config.warnings), [
    'sidecar.yaml:5:3: warning: Sidecar/web/default: spec.ingress: not implemented by egressd; ignored (egressd controls outbound traffic only)',
    'sidecar.yaml:7:7: warning: Sidecar/web/default: spec.egress[0].port: not implemented by egressd; ignored (egress hosts apply to every port)',
    'sidecar.yaml:11:5: warning: Sidecar/web/default: spec.outboundTrafficPolicy.egressProxy: not implemented by egressd; ignored (egressd always uses its own egress gateway)',
  ]);
});

test('a DestinationRule that originates TLS on a TLS port is warned about', (t) => {
  const text = `${SE('api')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: default}
spec:
  host: api.example.com
  trafficPolicy: {tls: {mode: SIMPLE}}
`;
  t.deepEqual(lines(parseConfigText(text, 'double.yaml').warnings), [
    'double.yaml:17:9: warning: DestinationRule/default/api: spec.host: originates TLS on port 443, whose protocol TLS means the client already speaks TLS: TLS inside TLS',
  ]);
});

test('directories are read recursively, *.yaml and *.yml only, in name order; hidden entries and repeated files skipped', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'nested', 'deeper'), { recursive: true });
  await mkdir(join(dir, '..data'));
  await writeFile(join(dir, 'b.yaml'), SE('b'));
  await writeFile(join(dir, 'a.yml'), SE('a'));
  await writeFile(join(dir, 'nested', 'deeper', 'c.YAML'), SE('c'));
  await writeFile(join(dir, 'notes.txt'), 'not yaml: [');
  await writeFile(join(dir, '..data', 'd.yaml'), SE('d'));
  await symlink(join(dir, 'b.yaml'), join(dir, 'link-to-b.yaml'));
  const config = await loadConfig([dir]);
  t.deepEqual(config.errors, []);
  t.deepEqual(
    config.files.map((f) => f.slice(dir.length + 1)),
    ['a.yml', 'b.yaml', join('nested', 'deeper', 'c.YAML')],
  );
  // link-to-b.yaml is b.yaml again: read once, so b is not "defined twice".
  t.deepEqual(config.serviceEntries.map((e) => e.name), ['a', 'b', 'c']);
});

test('a missing path and an unreadable file are error problems, never exceptions', async (t) => {
  const dir = await tempDir(t);
  const locked = join(dir, 'locked.yaml');
  await writeFile(locked, SE('locked'));
  await chmod(locked, 0o000);
  const config = await loadConfig([join(dir, 'missing.yaml'), locked, dir]);
  const messages = config.errors.map((p) => `${p.file.slice(dir.length + 1)}: ${p.message}`);
  t.true(messages.includes('missing.yaml: cannot read: no such file or directory'));
  // root reads anything; the locked file is an error only for other users.
  if (process.getuid?.() !== 0) t.true(messages.includes('locked.yaml: cannot read: permission denied'));
  t.is(config.errors.every((p) => p.line === 0), true);
});

test('an empty directory is a warning, an empty file is nothing', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'empty'));
  await writeFile(join(dir, 'blank.yaml'), '# nothing yet\n');
  const config = await loadConfig([join(dir, 'empty'), join(dir, 'blank.yaml')]);
  t.deepEqual(config.errors, []);
  t.deepEqual(config.warnings.map((p) => p.message), ['no *.yaml or *.yml files in this directory']);
});

test('the same file given twice is read once', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'a.yaml'), SE('a'));
  const config = await loadConfig([join(dir, 'a.yaml'), join(dir, 'a.yaml')]);
  t.deepEqual(config.errors, []);
  t.is(config.files.length, 1);
});

test('a resource defined in two files is an error at the second, pointing at the first', (t) => {
  const config = parseConfigTexts([
    { filename: 'one.yaml', text: SE('twice') },
    { filename: 'two.yaml', text: `# again\n${SE('twice')}` },
  ]);
  t.deepEqual(lines(config.errors), ['two.yaml:2:1: ServiceEntry/default/twice: defined twice; first at one.yaml:1:1']);
  t.is(config.serviceEntries.length, 1);
});

test('YAML warnings are warnings; a DestinationRule for a bare "*" is an error', (t) => {
  const config = parseConfigText(
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec:
  host: "*"
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: tagged, namespace: a}
spec: !custom {}
`,
    'tags.yaml',
  );
  t.deepEqual(lines(config.errors), ['tags.yaml:5:9: DestinationRule/default/all: spec.host: a bare "*" is not supported: name the host, or *.suffix']);
  t.deepEqual(lines(config.warnings), ['tags.yaml:10:7: warning: YAML: Unresolved tag: !custom']);
  t.is(config.sidecars.length, 1);
});
