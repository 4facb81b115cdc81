/**
 * The agent's CreateCertificate client (HTTP/2 by hand) against the real control plane,
 * whose server is @grpc/grpc-js with the proto/istio-ca.proto definition.
 */
import test, { type ExecutionContext } from 'ava';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from '../../../src/control-plane/control-plane.ts';
import { loadTokenSigningKey, mintServiceAccountToken } from '../../../src/control-plane/service-account-token.ts';
import { EgressdError } from '../../../src/core/errors.ts';
import { createLogger } from '../../../src/core/logger.ts';
import { requestCertificate, type CaEndpoint } from '../../../src/pki/ca-client.ts';
import { createCsr } from '../../../src/pki/csr.ts';
import { generateWorkloadKey } from '../../../src/pki/keys.ts';

const TD = 'example.org';
const ID = `spiffe://${TD}/ns/shop/sa/cart`;

async function controlPlane(t: ExecutionContext): Promise<{ cp: ControlPlane; token: string; endpoint: CaEndpoint }> {
  const stateDir = await mkdtemp(join(tmpdir(), 'egressd-ca-client-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const cp = await startControlPlane({
    listen: { host: '127.0.0.1', port: 0 },
    ca: { stateDir, trustDomain: TD },
    policy: { trustDomain: TD, defaultValiditySeconds: 3600, maxValiditySeconds: 7200 },
    tokens: { kind: 'local' },
    serverNames: ['localhost'],
    logger: createLogger('control-plane', { level: 'silent' }),
  });
  t.teardown(() => cp.stop());
  const token = mintServiceAccountToken(await loadTokenSigningKey({ stateDir }), { namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
  return { cp, token, endpoint: { address: `127.0.0.1:${cp.grpcPort}`, trustBundlePem: cp.ca.trustBundlePem() } };
}

test('a certificate: addressed by IP and verified by name, with Istio metadata, for the validity asked', async (t) => {
  const { token, endpoint } = await controlPlane(t);
  const key = generateWorkloadKey();
  const chain = await requestCertificate({ ...endpoint, serverName: 'localhost', metadata: { ClusterID: 'Kubernetes' } }, { csrPem: await createCsr(key, { uris: [ID] }), validitySeconds: 1800, token });
  t.is(chain.length, 2);
  const leaf = new X509Certificate(chain[0]!);
  t.is(leaf.subjectAltName, `URI:${ID}`);
  t.true(leaf.checkIssued(new X509Certificate(chain[1]!)));
  t.is((Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000, 1800 + 60, 'the validity asked, plus the backdated minute');
});

test('a refusal: EGRESSD_ERR_CA_REQUEST naming the CA, the gRPC status and its message', async (t) => {
  const { endpoint } = await controlPlane(t);
  const err = await t.throwsAsync(requestCertificate(endpoint, { csrPem: await createCsr(generateWorkloadKey(), { uris: [ID] }), validitySeconds: 60, token: 'not-a-jwt' }), { instanceOf: EgressdError });
  t.is(err!.code, 'EGRESSD_ERR_CA_REQUEST');
  t.regex(err!.message, new RegExp(`^CreateCertificate at ${endpoint.address.replaceAll('.', '\\.')}: UNAUTHENTICATED: token_`));
  t.deepEqual(err!.context, { grpcCode: 16, grpcStatus: 'UNAUTHENTICATED' });
});

test('a CA that is gone: UNAVAILABLE', async (t) => {
  const { cp, token, endpoint } = await controlPlane(t);
  await cp.stop();
  const err = await t.throwsAsync(requestCertificate(endpoint, { csrPem: await createCsr(generateWorkloadKey(), { uris: [ID] }), validitySeconds: 60, token }), { instanceOf: EgressdError });
  t.deepEqual(err!.context, { grpcCode: 14, grpcStatus: 'UNAVAILABLE' });
  t.regex(err!.message, /ECONNREFUSED/);
});
