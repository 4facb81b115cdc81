import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from '../../../src/control-plane/jwt.ts';
import type { RefusalReason } from '../../../src/control-plane/refusals.ts';
import { LocalTokenVerifier, mintServiceAccountToken, tokenSigningKey } from '../../../src/control-plane/service-account-token.ts';

const signer = tokenSigningKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
const other = tokenSigningKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
const verifier = new LocalTokenVerifier({ keys: [signer] });
const mint = (p: Partial<Parameters<typeof mintServiceAccountToken>[1]> = {}, key = signer): string =>
  mintServiceAccountToken(key, { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600, ...p });
const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

test('a minted token has the claims of a Kubernetes projected token and verifies', async (t) => {
  const token = mint();
  const jwt = decodeJwt(token);
  if (!jwt.ok) return t.fail(jwt.message);
  t.deepEqual(jwt.header, { alg: 'ES256', kid: signer.kid });
  const c = jwt.payload;
  t.is(c.sub, 'system:serviceaccount:shop:cart');
  t.deepEqual(c.aud, ['egressd']);
  t.deepEqual(c['kubernetes.io'], { namespace: 'shop', serviceaccount: { name: 'cart' } });
  t.is((c.exp as number) - (c.iat as number), 600);
  t.is(c.nbf, c.iat);
  t.deepEqual(await verifier.verify(token), { ok: true, caller: { namespace: 'shop', serviceAccount: 'cart' } });
});

const [head, body] = mint().split('.') as [string, string];
const refused: Record<string, [() => string, RefusalReason]> = {
  'an expired token': [() => mint({ now: new Date(Date.now() - 7200_000) }), 'token_expired'],
  'a token not valid yet': [() => mint({ now: new Date(Date.now() + 7200_000) }), 'token_not_yet_valid'],
  'another audience': [() => mint({ audiences: ['vault'] }), 'token_wrong_audience'],
  'another issuer': [() => mint({ issuer: 'https://kubernetes.default.svc' }), 'token_wrong_issuer'],
  'alg none, no signature': [() => `${b64({ alg: 'none' })}.${body}.`, 'token_unsigned'],
  'alg None with a signature': [() => `${b64({ alg: 'None', kid: signer.kid })}.${body}.c2ln`, 'token_unsigned'],
  'HS256 (key confusion)': [() => `${b64({ alg: 'HS256', kid: signer.kid })}.${body}.c2ln`, 'token_bad_signature'],
  'a key we do not know': [() => mint({}, other), 'token_bad_signature'],
  'a tampered payload': [() => `${head}.${b64({ ...JSON.parse(Buffer.from(body, 'base64url').toString()), sub: 'system:serviceaccount:kube-system:admin' })}.${mint().split('.')[2]}`, 'token_bad_signature'],
  'two parts': [() => `${head}.${body}`, 'token_malformed'],
  'not base64url': [() => 'a.b$.c', 'token_malformed'],
  'a header that is not JSON': [() => `bm90IGpzb24.${body}.c2ln`, 'token_malformed'],
};
for (const [name, [token, reason]] of Object.entries(refused)) {
  test(`refused: ${name}`, async (t) => {
    const verdict = await verifier.verify(token());
    t.false(verdict.ok);
    if (!verdict.ok) {
      t.is(verdict.reason, reason);
      t.true(verdict.message.length > 0);
    }
  });
}

test('a subject that disagrees with its kubernetes.io claims is refused', async (t) => {
  const { signEs256 } = await import('../../../src/control-plane/jwt.ts');
  const now = Math.floor(Date.now() / 1000);
  const token = signEs256(
    { iss: 'egressd-control-plane', aud: 'egressd', exp: now + 60, sub: 'system:serviceaccount:shop:cart', 'kubernetes.io': { namespace: 'bank', serviceaccount: { name: 'cart' } } },
    signer.key,
    signer.kid,
  );
  const verdict = await verifier.verify(token);
  t.like(verdict, { ok: false, reason: 'token_not_service_account' });
});

test('the signing key must be P-256', (t) => {
  t.throws(() => tokenSigningKey(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey), { code: 'EGRESSD_ERR_TOKEN' });
});
