import test from 'ava';
import { decideIssuance, type IssuancePolicy } from '../../../src/control-plane/csr-policy.ts';
import type { CsrFacts } from '../../../src/pki/csr.ts';

const policy: IssuancePolicy = { trustDomain: 'example.org', defaultValiditySeconds: 86_400, maxValiditySeconds: 90 * 86_400 };
const caller = { namespace: 'shop', serviceAccount: 'cart' };
const ID = 'spiffe://example.org/ns/shop/sa/cart';
const good: CsrFacts = {
  publicKeyDer: Buffer.alloc(0),
  key: { kind: 'ec', curve: 'P-256' },
  selfSignatureValid: true,
  uris: [ID],
  dnsNames: [],
  ipAddresses: [],
  emails: [],
  otherNames: [],
  requestsCa: false,
};

test('its own SPIFFE ID: allowed, default validity when none is asked, capped at the maximum', (t) => {
  t.deepEqual(decideIssuance(policy, caller, good, 0), { allow: true, spiffeId: ID, validitySeconds: 86_400 });
  t.like(decideIssuance(policy, caller, good, 600), { allow: true, validitySeconds: 600 });
  t.like(decideIssuance(policy, caller, good, 365 * 86_400), { allow: true, validitySeconds: 90 * 86_400 });
});

const cases: Record<string, [Partial<CsrFacts>, string]> = {
  "another service account's ID": [{ uris: ['spiffe://example.org/ns/shop/sa/admin'] }, 'csr_identity_mismatch'],
  'another trust domain': [{ uris: ['spiffe://evil.org/ns/shop/sa/cart'] }, 'csr_identity_mismatch'],
  'no URI': [{ uris: [] }, 'csr_no_identity'],
  'an extra DNS name': [{ dnsNames: ['bank.example'] }, 'csr_extra_names'],
  'an extra IP': [{ ipAddresses: ['10.0.0.1'] }, 'csr_extra_names'],
  'an extra email': [{ emails: ['a@b.c'] }, 'csr_extra_names'],
  'an extra URI': [{ uris: [ID, 'https://example.org'] }, 'csr_extra_names'],
  'the ID twice': [{ uris: [ID, ID] }, 'csr_extra_names'],
  'another name form': [{ otherNames: ['[4]'] }, 'csr_extra_names'],
  'CA:TRUE': [{ requestsCa: true }, 'csr_requests_ca'],
  'a weak key': [{ key: 'RSA key of 1024 bits is too short (at least 2048)' }, 'csr_weak_key'],
  'a bad self-signature': [{ selfSignatureValid: false }, 'csr_bad_signature'],
};
for (const [name, [facts, reason]] of Object.entries(cases)) {
  test(`refused: ${name}`, (t) => {
    const d = decideIssuance(policy, caller, { ...good, ...facts }, 0);
    t.like(d, { allow: false, reason });
    if (!d.allow) t.true(d.message.length > 0);
  });
}

test('a caller whose names cannot form a SPIFFE ID is refused', (t) => {
  t.like(decideIssuance(policy, { namespace: 'Shop', serviceAccount: 'cart' }, good, 0), { allow: false, reason: 'token_not_service_account' });
});
