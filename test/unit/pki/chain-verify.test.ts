import test from 'ava';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createSelfSignedRoot } from '../../../src/pki/ca-files.ts';
import { CertificateAuthority } from '../../../src/pki/certificate-authority.ts';
import { verifyIssuedChain } from '../../../src/pki/chain-verify.ts';
import { generateWorkloadKey } from '../../../src/pki/keys.ts';
import { rootAndIntermediate } from './_fixtures.ts';

const ID = 'spiffe://example.org/ns/shop/sa/cart';
const spki = (k: KeyObject): Buffer => createPublicKey(k).export({ format: 'der', type: 'spki' });

test('a chain through an intermediate to a bundle root verifies; roots are left out of what we present', async (t) => {
  const { root, intermediate } = await rootAndIntermediate();
  const ca = CertificateAuthority.fromPem({ ...intermediate, trustBundlePem: root.certificatePem });
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: spki(key), names: { uris: [ID] }, ttlSeconds: 600 });
  const v = verifyIssuedChain({ chainPem: issued.chain, trustBundlePem: root.certificatePem, spiffeId: ID, key });
  t.is(v.serial, issued.serial);
  t.deepEqual(v.intermediatesPem, [issued.chain[1]]);
  t.deepEqual(v.notAfter, issued.notAfter);
  // Without the intermediate the leaf does not link to a root.
  t.throws(() => verifyIssuedChain({ chainPem: [issued.chain[0]!], trustBundlePem: root.certificatePem, spiffeId: ID, key }), { code: 'EGRESSD_ERR_CERT_CHAIN' });
});

test('refused: another key, another identity, an untrusted root, an expired leaf, an empty chain', async (t) => {
  const rootMaterial = await createSelfSignedRoot('example.org');
  const ca = CertificateAuthority.fromPem(rootMaterial);
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: spki(key), names: { uris: [ID] }, ttlSeconds: 600 });
  const bundle = rootMaterial.certificatePem;
  const base = { chainPem: issued.chain, trustBundlePem: bundle, spiffeId: ID, key };
  t.notThrows(() => verifyIssuedChain(base));
  const check = (over: Partial<typeof base> & { now?: Date }, message: RegExp): void => {
    t.throws(() => verifyIssuedChain({ ...base, ...over }), { code: 'EGRESSD_ERR_CERT_CHAIN', message });
  };
  check({ key: generateWorkloadKey() }, /another key/);
  check({ spiffeId: 'spiffe://example.org/ns/shop/sa/other' }, /expected only/);
  check({ trustBundlePem: (await createSelfSignedRoot('example.org')).certificatePem }, /not issued/);
  check({ now: new Date(Date.now() + 3600_000) } as never, /expired/);
  check({ chainPem: [] }, /empty chain/);
  check({ trustBundlePem: '' }, /no certificate/);
  const extra = ca.issue({ publicKeyDer: spki(key), names: { uris: [ID], dnsNames: ['x.example'] }, ttlSeconds: 600 });
  check({ chainPem: extra.chain }, /expected only/);
});
