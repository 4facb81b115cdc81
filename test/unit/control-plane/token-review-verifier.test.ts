import test from 'ava';
import { createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenReviewVerifier } from '../../../src/control-plane/token-review-verifier.ts';
import { createSelfSignedRoot } from '../../../src/pki/ca-files.ts';
import { CertificateAuthority } from '../../../src/pki/certificate-authority.ts';
import { generateWorkloadKey, privateKeyPem } from '../../../src/pki/keys.ts';

/**
 * A small HTTPS stand-in for the kube-apiserver's TokenReview endpoint (the API server is
 * outside egressd); the verifier under test is the real @kubernetes/client-node path.
 */
const reviews: Record<string, { authenticated: boolean; user?: { username: string }; audiences?: string[]; error?: string }> = {
  'cart-token': { authenticated: true, user: { username: 'system:serviceaccount:shop:cart' }, audiences: ['egressd'] },
  'other-audience': { authenticated: false, error: 'token audiences ["vault"] is invalid for the target audiences ["egressd"]' },
  'old-apiserver': { authenticated: true, user: { username: 'system:serviceaccount:shop:cart' } },
  'a-user': { authenticated: true, user: { username: 'alice' }, audiences: ['egressd'] },
};

async function fakeApiServer(t: { teardown: (f: () => Promise<void> | void) => void }): Promise<{ kubeconfig: string; requests: unknown[] }> {
  const ca = CertificateAuthority.fromPem(await createSelfSignedRoot('kube'));
  const key = generateWorkloadKey();
  const issued = ca.issue({ publicKeyDer: createPublicKey(key).export({ format: 'der', type: 'spki' }), names: { ipAddresses: ['127.0.0.1'] }, ttlSeconds: 600 });
  const requests: unknown[] = [];
  const server = createServer({ key: privateKeyPem(key), cert: issued.certificatePem }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.startsWith('/apis/authentication.k8s.io/v1/tokenreviews') || req.headers.authorization !== 'Bearer ca-reviewer') {
        res.writeHead(403, { 'content-type': 'application/json' }).end('{"kind":"Status","code":403}');
        return;
      }
      const review = JSON.parse(body) as { spec: { token: string; audiences?: string[] } };
      requests.push(review);
      const status = reviews[review.spec.token] ?? { authenticated: false, error: 'invalid bearer token' };
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ ...review, status }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const dir = await mkdtemp(join(tmpdir(), 'egc-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  const caData = Buffer.from(ca.trustBundlePem()).toString('base64');
  await writeFile(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: https://127.0.0.1:${(server.address() as AddressInfo).port}\n    certificate-authority-data: ${caData}\nusers:\n- name: reviewer\n  user:\n    token: ca-reviewer\ncontexts:\n- name: fake\n  context: {cluster: fake, user: reviewer}\ncurrent-context: fake\n`,
  );
  return { kubeconfig, requests };
}

test('TokenReview: a service account token for our audience names its caller', async (t) => {
  const api = await fakeApiServer(t);
  const verifier = new TokenReviewVerifier({ kubeconfigFile: api.kubeconfig });
  t.deepEqual(await verifier.verify('cart-token'), { ok: true, caller: { namespace: 'shop', serviceAccount: 'cart' } });
  t.like(api.requests[0], { kind: 'TokenReview', spec: { token: 'cart-token', audiences: ['egressd'] } });
});

const refusals: Record<string, string> = {
  'other-audience': 'token_not_authenticated',
  'old-apiserver': 'token_wrong_audience',
  'a-user': 'token_not_service_account',
  'unknown-token': 'token_not_authenticated',
};
for (const [token, reason] of Object.entries(refusals)) {
  test(`TokenReview refuses ${token}`, async (t) => {
    const api = await fakeApiServer(t);
    const verdict = await new TokenReviewVerifier({ kubeconfigFile: api.kubeconfig }).verify(token);
    t.like(verdict, { ok: false, reason });
  });
}

test('TokenReview: an unreachable API server is token_review_failed, not a crash', async (t) => {
  const api = await fakeApiServer(t);
  const dir = await mkdtemp(join(tmpdir(), 'egc-kube-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { readFile } = await import('node:fs/promises');
  const broken = join(dir, 'kubeconfig');
  await writeFile(broken, (await readFile(api.kubeconfig, 'utf8')).replace(/127\.0\.0\.1:\d+/, '127.0.0.1:1'));
  t.like(await new TokenReviewVerifier({ kubeconfigFile: broken }).verify('cart-token'), { ok: false, reason: 'token_review_failed' });
});
