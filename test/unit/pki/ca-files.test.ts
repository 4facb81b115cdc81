import test from 'ava';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STATE_FILES, loadCertificateAuthority } from '../../../src/pki/ca-files.ts';
import { x509 } from '../../../src/pki/x509.ts';
import { rootAndIntermediate } from './_fixtures.ts';

async function tempDir(t: { teardown: (f: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'egc-pki-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('--state-dir: a root is created once, kept private, and reused on restart', async (t) => {
  const dir = await tempDir(t);
  const first = await loadCertificateAuthority({ stateDir: dir, trustDomain: 'example.org' });
  t.is(first.origin, 'state-dir-created');
  t.is((await stat(join(dir, STATE_FILES.key))).mode & 0o777, 0o600);
  const second = await loadCertificateAuthority({ stateDir: dir, trustDomain: 'example.org' });
  t.is(second.origin, 'state-dir-reused');
  t.deepEqual(second.ca.chain, first.ca.chain);
  const bundle = await readFile(join(dir, STATE_FILES.trustBundle), 'utf8');
  t.is(new x509.X509Certificate(bundle).subject, new x509.X509Certificate(first.ca.chain[0]!).subject);
  t.regex(new x509.X509Certificate(first.ca.chain[0]!).subject, /example\.org/);
});

test('files: an intermediate with its chain and a bundle; the bundle is copied to the state dir', async (t) => {
  const dir = await tempDir(t);
  const { root, intermediate } = await rootAndIntermediate();
  await writeFile(join(dir, 'i.pem'), intermediate.certificatePem);
  await writeFile(join(dir, 'i.key'), intermediate.keyPem);
  await writeFile(join(dir, 'roots.pem'), root.certificatePem);
  const { ca, origin } = await loadCertificateAuthority({
    caCertFile: join(dir, 'i.pem'),
    caKeyFile: join(dir, 'i.key'),
    trustBundleFile: join(dir, 'roots.pem'),
    stateDir: join(dir, 'state'),
    trustDomain: 'example.org',
  });
  t.is(origin, 'files');
  t.is(ca.chain.length, 2);
  t.is(await readFile(join(dir, 'state', STATE_FILES.trustBundle), 'utf8'), ca.trustBundlePem());
});

test('--ca-cert without --ca-key, or nothing at all, is a usage error', async (t) => {
  await t.throwsAsync(loadCertificateAuthority({ caCertFile: '/nonexistent', trustDomain: 'td' }), { code: 'EGRESSD_ERR_USAGE' });
  await t.throwsAsync(loadCertificateAuthority({ trustDomain: 'td' }), { code: 'EGRESSD_ERR_USAGE' });
});

test('an unreadable CA file is named in the error', async (t) => {
  const err = await t.throwsAsync(loadCertificateAuthority({ caCertFile: '/nonexistent/c.pem', caKeyFile: '/nonexistent/k.pem', trustDomain: 'td' }));
  t.is((err as { code?: string }).code, 'EGRESSD_ERR_PKI');
  t.regex(err!.message, /\/nonexistent\/c\.pem/);
});
