import test from 'ava';
import { createPublicKey } from 'node:crypto';
import { createSelfSignedRoot } from '../../../src/pki/ca-files.ts';
import { CertificateAuthority, DEFAULT_BACKDATE_SECONDS } from '../../../src/pki/certificate-authority.ts';
import { generateWorkloadKey } from '../../../src/pki/keys.ts';
import { x509 } from '../../../src/pki/x509.ts';
import { rootAndIntermediate } from './_fixtures.ts';

const ID = 'spiffe://example.org/ns/shop/sa/cart';
const spki = (): Buffer => createPublicKey(generateWorkloadKey()).export({ format: 'der', type: 'spki' });

test('a leaf has the SPIFFE SAN (critical, empty subject), usages, serial, backdated notBefore, AKI/SKI', async (t) => {
  const root = await createSelfSignedRoot('example.org');
  const ca = CertificateAuthority.fromPem(root);
  const publicKeyDer = spki();
  const now = new Date();
  const issued = ca.issue({ publicKeyDer, names: { uris: [ID] }, ttlSeconds: 3600, now });
  const leaf = new x509.X509Certificate(issued.certificatePem);
  const rootCert = new x509.X509Certificate(root.certificatePem);

  t.is(leaf.subject, '');
  t.is(leaf.issuer, rootCert.subject);
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension)!;
  t.true(san.critical);
  t.deepEqual(san.names.items.map((n) => [n.type, n.value]), [['url', ID]]);
  const ku = leaf.getExtension(x509.KeyUsagesExtension)!;
  t.is(ku.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
  t.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
  t.false(leaf.getExtension(x509.BasicConstraintsExtension)!.ca);
  t.is(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId, rootCert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
  t.is(leaf.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId, (await x509.SubjectKeyIdentifierExtension.create(leaf.publicKey)).keyId);
  t.is(leaf.serialNumber, issued.serial);
  t.is(issued.serial.length, 32);
  t.deepEqual(Buffer.from(leaf.publicKey.rawData), publicKeyDer);
  const seconds = Math.floor(now.getTime() / 1000) * 1000;
  t.is(leaf.notBefore.getTime(), seconds - DEFAULT_BACKDATE_SECONDS * 1000);
  t.is(leaf.notAfter.getTime(), seconds + 3600_000);
  t.deepEqual([leaf.notBefore, leaf.notAfter], [issued.notBefore, issued.notAfter]);
  t.true(await leaf.verify({ publicKey: rootCert.publicKey, signatureOnly: true }));
  t.deepEqual(issued.chain.slice(1), [...ca.chain]);
  t.is(issued.chain.length, 2);
});

test('serials differ between issuances', async (t) => {
  const ca = CertificateAuthority.fromPem(await createSelfSignedRoot('example.org'));
  const serials = new Set(Array.from({ length: 50 }, () => ca.issue({ publicKeyDer: spki(), names: { uris: [ID] }, ttlSeconds: 60 }).serial));
  t.is(serials.size, 50);
});

test('a leaf never outlives the CA', async (t) => {
  const ca = CertificateAuthority.fromPem(await createSelfSignedRoot('example.org'));
  const issued = ca.issue({ publicKeyDer: spki(), names: { uris: [ID] }, ttlSeconds: 100 * 365 * 86_400 });
  t.is(issued.notAfter.getTime(), Math.floor(ca.notAfter.getTime() / 1000) * 1000);
});

test('an intermediate CA returns leaf, intermediate, root, and the chain builds to the root', async (t) => {
  const { root, intermediate } = await rootAndIntermediate();
  const ca = CertificateAuthority.fromPem({ ...intermediate, trustBundlePem: root.certificatePem });
  const issued = ca.issue({ publicKeyDer: spki(), names: { uris: [ID] }, ttlSeconds: 600 });
  const [leaf, inter, top] = issued.chain.map((pem) => new x509.X509Certificate(pem));
  t.is(issued.chain.length, 3);
  t.is(inter!.subject, new x509.X509Certificate(intermediate.certificatePem).subject);
  t.true(await top!.isSelfSigned());
  t.is(leaf!.issuer, inter!.subject);
  t.is(leaf!.signatureAlgorithm.hash.name, 'SHA-384');
  const builder = new x509.X509ChainBuilder({ certificates: [inter!, top!] });
  const chain = await builder.build(leaf!);
  t.is(chain.length, 3);
  t.true(await leaf!.verify({ publicKey: inter!.publicKey, signatureOnly: true }));
});

test('with --ca-chain holding the intermediate and the root, the root is not doubled', async (t) => {
  const { root, intermediate } = await rootAndIntermediate();
  const ca = CertificateAuthority.fromPem({ ...intermediate, chainPem: root.certificatePem });
  t.is(ca.chain.length, 2);
  t.deepEqual([...ca.trustBundle], [ca.chain[1]]);
});

test('a trust bundle of two roots (rotation) is kept whole', async (t) => {
  const oldRoot = await createSelfSignedRoot('example.org');
  const newRoot = await createSelfSignedRoot('example.org');
  const ca = CertificateAuthority.fromPem({ ...newRoot, trustBundlePem: oldRoot.certificatePem + newRoot.certificatePem });
  t.is(ca.trustBundle.length, 2);
});

const badMaterial: Record<string, () => Promise<Parameters<typeof CertificateAuthority.fromPem>[0]>> = {
  'a key that does not match the certificate': async () => ({ ...(await createSelfSignedRoot('a')), keyPem: (await createSelfSignedRoot('b')).keyPem }),
  'an intermediate whose root is not given': async () => (await rootAndIntermediate()).intermediate,
  'a chain that does not link': async () => ({ ...(await rootAndIntermediate()).intermediate, chainPem: (await createSelfSignedRoot('x')).certificatePem }),
  'a trust bundle without the root': async () => ({ ...(await createSelfSignedRoot('a')), trustBundlePem: (await createSelfSignedRoot('b')).certificatePem }),
  'garbage for a certificate': async () => ({ ...(await createSelfSignedRoot('a')), certificatePem: 'nope' }),
  'garbage for a key': async () => ({ ...(await createSelfSignedRoot('a')), keyPem: 'nope' }),
};
for (const [name, material] of Object.entries(badMaterial)) {
  test(`CA material refused: ${name}`, async (t) => {
    const m = await material();
    const err = t.throws(() => CertificateAuthority.fromPem(m));
    t.is((err as { code?: string }).code, 'EGRESSD_ERR_PKI');
  });
}

test('a leaf certificate cannot act as CA', async (t) => {
  const root = await createSelfSignedRoot('example.org');
  const ca = CertificateAuthority.fromPem(root);
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names: { uris: [ID] }, ttlSeconds: 60 });
  const err = t.throws(() =>
    CertificateAuthority.fromPem({ certificatePem: issued.certificatePem, keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString() }),
  );
  t.regex(err!.message, /CA:FALSE/);
});
