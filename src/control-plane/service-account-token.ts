import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EgressdError, errorMessage } from '../core/errors.ts';
import { writeFileAtomic } from '../pki/atomic-write.ts';
import { decodeJwt, signEs256, verifyEs256 } from './jwt.ts';
import { callerFromUsername, type TokenVerdict, type TokenVerifier } from './token-verifier.ts';

/**
 * The control plane as its own token issuer, for demos and tests outside a cluster:
 * ES256 tokens shaped like Kubernetes projected service-account tokens.
 */
export const DEFAULT_AUDIENCE = 'egressd';
export const DEFAULT_ISSUER = 'egressd-control-plane';
/** File name of the token signing key inside --state-dir. */
export const TOKEN_KEY_FILE = 'token-signing-key.pem';
/** Clock skew allowed on exp and nbf. */
export const TOKEN_LEEWAY_SECONDS = 30;

export interface TokenSigningKey {
  key: KeyObject;
  publicKey: KeyObject;
  /** Key ID in the JWT header: base64url SHA-256 of the public key, as Kubernetes does. */
  kid: string;
}

export function tokenSigningKey(key: KeyObject): TokenSigningKey {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EgressdError('EGRESSD_ERR_TOKEN', 'the token signing key must be an ECDSA P-256 key (ES256)');
  }
  const publicKey = createPublicKey(key);
  const kid = createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('base64url');
  return { key, publicKey, kid };
}

/**
 * The signing key from --signing-key FILE, or from --state-dir (created there on first use
 * when `create` is set: the control plane creates it, `egressctl token` only reads it).
 */
export async function loadTokenSigningKey(source: { file?: string; stateDir?: string; create?: boolean }): Promise<TokenSigningKey> {
  const path = source.file ?? (source.stateDir ? join(source.stateDir, TOKEN_KEY_FILE) : undefined);
  if (!path) throw new EgressdError('EGRESSD_ERR_USAGE', 'give --signing-key FILE or --state-dir DIR');
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !source.create || source.file) {
      throw new EgressdError('EGRESSD_ERR_TOKEN', `token signing key ${path}: ${errorMessage(err)}`, { cause: err });
    }
    const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    await mkdir(source.stateDir!, { recursive: true, mode: 0o700 });
    await writeFileAtomic(path, key.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    return tokenSigningKey(key);
  }
  try {
    return tokenSigningKey((await import('node:crypto')).createPrivateKey(pem));
  } catch (err) {
    if (err instanceof EgressdError) throw err;
    throw new EgressdError('EGRESSD_ERR_TOKEN', `token signing key ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

export interface MintParams {
  namespace: string;
  serviceAccount: string;
  audiences?: readonly string[];
  issuer?: string;
  ttlSeconds: number;
  now?: Date;
}

export function mintServiceAccountToken(signer: TokenSigningKey, p: MintParams): string {
  const iat = Math.floor((p.now ?? new Date()).getTime() / 1000);
  return signEs256(
    {
      iss: p.issuer ?? DEFAULT_ISSUER,
      sub: `system:serviceaccount:${p.namespace}:${p.serviceAccount}`,
      aud: [...(p.audiences ?? [DEFAULT_AUDIENCE])],
      iat,
      nbf: iat,
      exp: iat + p.ttlSeconds,
      'kubernetes.io': { namespace: p.namespace, serviceaccount: { name: p.serviceAccount } },
    },
    signer.key,
    signer.kid,
  );
}

export interface LocalVerifierOptions {
  /** Public keys accepted, by kid (several during a key rotation). */
  keys: readonly TokenSigningKey[];
  audience?: string;
  issuer?: string;
  now?: () => Date;
}

export class LocalTokenVerifier implements TokenVerifier {
  readonly #keys: Map<string, KeyObject>;
  readonly #audience: string;
  readonly #issuer: string;
  readonly #now: () => Date;

  constructor(options: LocalVerifierOptions) {
    this.#keys = new Map(options.keys.map((k) => [k.kid, k.publicKey]));
    this.#audience = options.audience ?? DEFAULT_AUDIENCE;
    this.#issuer = options.issuer ?? DEFAULT_ISSUER;
    this.#now = options.now ?? (() => new Date());
  }

  async verify(token: string): Promise<TokenVerdict> {
    const jwt = decodeJwt(token);
    if (!jwt.ok) return { ok: false, reason: 'token_malformed', message: jwt.message };
    if (jwt.header.alg.toLowerCase() === 'none') return { ok: false, reason: 'token_unsigned', message: 'unsigned token (alg "none") refused' };
    if (jwt.header.alg !== 'ES256') return { ok: false, reason: 'token_bad_signature', message: `token algorithm ${jwt.header.alg} refused (ES256 only)` };
    const key = jwt.header.kid === undefined ? undefined : this.#keys.get(jwt.header.kid);
    if (!key) return { ok: false, reason: 'token_bad_signature', message: `token signed by an unknown key (kid ${jwt.header.kid ?? 'missing'})` };
    if (!verifyEs256(jwt, key)) return { ok: false, reason: 'token_bad_signature', message: 'token signature does not verify' };
    const c = jwt.payload;
    const now = Math.floor(this.#now().getTime() / 1000);
    if (c.iss !== this.#issuer) return { ok: false, reason: 'token_wrong_issuer', message: `token issuer ${JSON.stringify(c.iss)} is not ${this.#issuer}` };
    const aud = typeof c.aud === 'string' ? [c.aud] : Array.isArray(c.aud) ? c.aud : [];
    if (!aud.includes(this.#audience)) {
      return { ok: false, reason: 'token_wrong_audience', message: `token audience ${JSON.stringify(c.aud ?? null)} does not include "${this.#audience}"` };
    }
    if (typeof c.exp !== 'number') return { ok: false, reason: 'token_malformed', message: 'token has no numeric "exp"' };
    if (now >= c.exp + TOKEN_LEEWAY_SECONDS) {
      return { ok: false, reason: 'token_expired', message: `token expired at ${new Date(c.exp * 1000).toISOString()}` };
    }
    if (typeof c.nbf === 'number' && now + TOKEN_LEEWAY_SECONDS < c.nbf) {
      return { ok: false, reason: 'token_not_yet_valid', message: `token not valid before ${new Date(c.nbf * 1000).toISOString()}` };
    }
    const caller = typeof c.sub === 'string' ? callerFromUsername(c.sub) : undefined;
    const k8s = c['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
    if (!caller || k8s?.namespace !== caller.namespace || k8s.serviceaccount?.name !== caller.serviceAccount) {
      return { ok: false, reason: 'token_not_service_account', message: `token subject ${JSON.stringify(c.sub ?? null)} is not a service account matching its kubernetes.io claims` };
    }
    return { ok: true, caller };
  }
}
