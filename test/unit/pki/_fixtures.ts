import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createSelfSignedRoot } from '../../../src/pki/ca-files.ts';
import { privateKeyPem, webCryptoKeyPair, webCryptoSigningAlgorithm } from '../../../src/pki/keys.ts';
import { x509 } from '../../../src/pki/x509.ts';

/** A root and an intermediate CA below it, as an operator would bring them (--ca-cert/--ca-key/--ca-chain/--trust-bundle). */
export async function rootAndIntermediate(trustDomain = 'example.org'): Promise<{
  root: { certificatePem: string; keyPem: string };
  intermediate: { certificatePem: string; keyPem: string };
}> {
  const root = await createSelfSignedRoot(trustDomain);
  const rootCert = new x509.X509Certificate(root.certificatePem);
  const rootKey = (await import('node:crypto')).createPrivateKey(root.keyPem);
  const key: KeyObject = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
  const keys = await webCryptoKeyPair(key);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01' + randomBytes(8).toString('hex'),
    subject: 'O=egressd, CN=intermediate',
    issuer: rootCert.subjectName,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    publicKey: keys.publicKey,
    signingKey: (await webCryptoKeyPair(rootKey)).privateKey,
    signingAlgorithm: webCryptoSigningAlgorithm(rootKey),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(rootCert),
    ],
  });
  return { root, intermediate: { certificatePem: cert.toString('pem'), keyPem: privateKeyPem(key) } };
}
