import { EventEmitter } from 'node:events';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { KeyObject } from 'node:crypto';
import { EgressdError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { requestCertificate, type CaEndpoint } from './ca-client.ts';
import { verifyIssuedChain } from './chain-verify.ts';
import { createCsr } from './csr.ts';
import { generateWorkloadKey, privateKeyPem } from './keys.ts';
import { spiffeId, type WorkloadIdentity } from './spiffe.ts';

/** Config of the agent's identity: who we are, where the CA is, when to renew. */
export interface CertificateManagerOptions {
  identity: WorkloadIdentity;
  ca: Omit<CaEndpoint, 'trustBundlePem'>;
  /** Projected service-account token, re-read at each renewal (the kubelet rotates it). */
  tokenFile: string;
  /** Roots: the CA's TLS certificate and our chain must lead to one. Re-read at each renewal (root rotation). */
  trustBundleFile: string;
  /** Requested validity; the CA may cap it. Default 24 h. */
  validitySeconds?: number;
  /** Renew when this fraction of the lifetime has passed. Default 0.5. */
  renewAtFraction?: number;
  /** Renew up to this fraction of the wait earlier, at random, so that a fleet does not renew in step. Default 0.1. */
  jitterFraction?: number;
  /** Retry delays after a failure: doubling from `initialMs` up to `maxMs`. Defaults 1 s and 60 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** If set, cert-chain.pem, key.pem and root-cert.pem are written here (Istio's file names) on each rotation. */
  outputDir?: string;
  logger?: Logger;
}

export interface CertificateStatus {
  spiffeId: string;
  ready: boolean;
  serial?: string;
  notBefore?: Date;
  notAfter?: Date;
  nextRenewal?: Date;
  /** Certificates obtained, the first one included. */
  renewals: number;
  /** Failed attempts, in total. */
  failures: number;
  consecutiveFailures: number;
  lastError?: string;
}

export interface CertificateManagerEvents {
  rotated: [CertificateStatus];
  'renewal-failed': [{ error: Error; attempt: number; retryInMs: number }];
  expired: [CertificateStatus];
}

/** Files written to `outputDir`. */
export const OUTPUT_FILES = { chain: 'cert-chain.pem', key: 'key.pem', bundle: 'root-cert.pem' } as const;

/** setTimeout's limit; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Current {
  context: SecureContext;
  keyPem: string;
  chainPem: string;
  trustBundlePem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The workload's certificate: obtained from the CA, renewed before it expires, retried
 * with backoff when the CA is away (keeping the old certificate while it is valid), and
 * handed out as a tls.SecureContext that is swapped in one assignment: new connections
 * take the new one, open connections carry on with theirs.
 */
export class CertificateManager extends EventEmitter<CertificateManagerEvents> {
  readonly spiffeId: string;
  readonly #options: CertificateManagerOptions;
  #current: Current | undefined;
  #trustBundlePem = '';
  #renewTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #nextRenewal: Date | undefined;
  #renewals = 0;
  #failures = 0;
  #consecutiveFailures = 0;
  #lastError: string | undefined;
  #expired = false;
  #running = false;
  #inFlight: Promise<void> | undefined;

  constructor(options: CertificateManagerOptions) {
    super();
    this.spiffeId = spiffeId(options.identity);
    const f = options.renewAtFraction ?? 0.5;
    const j = options.jitterFraction ?? 0.1;
    if (!(f > 0 && f < 1)) throw new EgressdError('EGRESSD_ERR_USAGE', `renewAtFraction must be between 0 and 1, got ${f}`);
    if (!(j >= 0 && j < 1)) throw new EgressdError('EGRESSD_ERR_USAGE', `jitterFraction must be in [0, 1), got ${j}`);
    this.#options = options;
  }

  /** Starts obtaining and renewing; returns at once. Listen for 'rotated', or await `whenReady`. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#expiryTimer);
    await this.#inFlight;
  }

  /** The current credentials for new TLS connections, or undefined before the first certificate. */
  secureContext(): SecureContext | undefined {
    return this.#current?.context;
  }

  /** The same credentials as PEM, for APIs that take options (e.g. `server.setSecureContext`). */
  tlsOptions(): { key: string; cert: string; ca: string } | undefined {
    const c = this.#current;
    return c && { key: c.keyPem, cert: c.chainPem, ca: c.trustBundlePem };
  }

  isReady(): boolean {
    return this.#current !== undefined && !this.#expired;
  }

  status(): CertificateStatus {
    const c = this.#current;
    return {
      spiffeId: this.spiffeId,
      ready: this.isReady(),
      ...(c ? { serial: c.serial, notBefore: c.notBefore, notAfter: c.notAfter } : {}),
      ...(this.#nextRenewal ? { nextRenewal: this.#nextRenewal } : {}),
      renewals: this.#renewals,
      failures: this.#failures,
      consecutiveFailures: this.#consecutiveFailures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** Resolves once a valid certificate is in place; rejects after `timeoutMs`. */
  async whenReady(timeoutMs: number): Promise<CertificateStatus> {
    if (this.isReady()) return this.status();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('rotated', onRotated);
        reject(new EgressdError('EGRESSD_ERR_CA_REQUEST', `no certificate for ${this.spiffeId} after ${timeoutMs} ms: ${this.#lastError ?? 'no answer yet'}`));
      }, timeoutMs);
      const onRotated = (s: CertificateStatus): void => {
        clearTimeout(timer);
        resolve(s);
      };
      this.once('rotated', onRotated);
    });
  }

  /**
   * Rotation behind one call, as linkerd's `set_certificate(leaf, chain, key, expiry)`:
   * checks the chain against the trust bundle and our identity, then swaps the
   * credentials. The expiry is the leaf's own notAfter, so the two cannot disagree.
   */
  async setCertificate(leafPem: string, chainPem: readonly string[], key: KeyObject): Promise<CertificateStatus> {
    const verified = verifyIssuedChain({ chainPem: [leafPem, ...chainPem], trustBundlePem: this.#trustBundlePem, spiffeId: this.spiffeId, key });
    const keyPem = privateKeyPem(key);
    const certChainPem = [verified.leafPem, ...verified.intermediatesPem].join('');
    const context = createSecureContext({ key: keyPem, cert: certChainPem, ca: this.#trustBundlePem });
    this.#current = { context, keyPem, chainPem: certChainPem, trustBundlePem: this.#trustBundlePem, ...verified };
    this.#expired = false;
    this.#renewals++;
    this.#armExpiry(verified.notAfter);
    if (this.#options.outputDir) await this.#writeFiles(this.#options.outputDir, this.#current);
    return this.status();
  }

  async #renew(): Promise<void> {
    const { logger } = this.#options;
    try {
      const [token, bundle] = await Promise.all([
        readFile(this.#options.tokenFile, 'utf8').catch((err: unknown) => {
          throw new EgressdError('EGRESSD_ERR_TOKEN', `token file ${this.#options.tokenFile}: ${errorMessage(err)}`, { cause: err });
        }),
        readFile(this.#options.trustBundleFile, 'utf8').catch((err: unknown) => {
          throw new EgressdError('EGRESSD_ERR_PKI', `trust bundle ${this.#options.trustBundleFile}: ${errorMessage(err)}`, { cause: err });
        }),
      ]);
      this.#trustBundlePem = bundle;
      const key = generateWorkloadKey();
      const csrPem = await createCsr(key, { uris: [this.spiffeId] });
      const chain = await requestCertificate(
        { ...this.#options.ca, trustBundlePem: bundle },
        { csrPem, validitySeconds: this.#options.validitySeconds ?? 86_400, token: token.trim() },
      );
      if (!this.#running) return;
      const status = await this.setCertificate(chain[0] ?? '', chain.slice(1), key);
      this.#consecutiveFailures = 0;
      this.#lastError = undefined;
      const next = this.#scheduleRenewal();
      logger?.info({ spiffeId: this.spiffeId, serial: status.serial, notAfter: status.notAfter, nextRenewal: next }, 'certificate rotated');
      this.emit('rotated', this.status());
    } catch (err) {
      if (!this.#running) return;
      const error = err instanceof Error ? err : new Error(String(err));
      this.#failures++;
      this.#consecutiveFailures++;
      this.#lastError = error.message;
      const retryInMs = this.#backoffMs();
      this.#schedule(retryInMs);
      const stillValid = this.#current !== undefined && !this.#expired;
      logger?.warn(
        { spiffeId: this.spiffeId, err: error.message, attempt: this.#consecutiveFailures, retryInMs, keepingSerial: stillValid ? this.#current?.serial : undefined },
        stillValid ? 'certificate renewal failed, keeping the current certificate' : 'certificate request failed',
      );
      this.emit('renewal-failed', { error, attempt: this.#consecutiveFailures, retryInMs });
    }
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#renewTimer);
    this.#nextRenewal = new Date(Date.now() + delayMs);
    const step = Math.min(delayMs, MAX_TIMER_MS);
    this.#renewTimer = setTimeout(() => {
      if (!this.#running) return;
      if (step < delayMs) return this.#schedule(delayMs - step);
      this.#inFlight = this.#renew().finally(() => (this.#inFlight = undefined));
    }, step);
    this.#renewTimer.unref();
  }

  /** Next renewal: the chosen fraction of what remains of the lifetime, less some jitter. */
  #scheduleRenewal(): Date {
    const c = this.#current!;
    const fraction = this.#options.renewAtFraction ?? 0.5;
    const jitter = this.#options.jitterFraction ?? 0.1;
    // Measured from now, not notBefore: the CA backdates notBefore for clock skew.
    const remaining = Math.max(0, c.notAfter.getTime() - Date.now());
    this.#schedule(remaining * fraction * (1 - jitter * Math.random()));
    return this.#nextRenewal!;
  }

  #backoffMs(): number {
    const initial = this.#options.backoff?.initialMs ?? 1000;
    const max = this.#options.backoff?.maxMs ?? 60_000;
    const base = Math.min(max, initial * 2 ** Math.min(this.#consecutiveFailures - 1, 30));
    return Math.round(base * (1 - (this.#options.jitterFraction ?? 0.1) * Math.random()));
  }

  #armExpiry(notAfter: Date): void {
    clearTimeout(this.#expiryTimer);
    const wait = notAfter.getTime() - Date.now();
    this.#expiryTimer = setTimeout(() => {
      if (this.#current?.notAfter !== notAfter) return;
      if (Date.now() < notAfter.getTime()) return this.#armExpiry(notAfter);
      this.#expired = true;
      this.#options.logger?.error(
        { spiffeId: this.spiffeId, serial: this.#current.serial, notAfter, lastError: this.#lastError },
        'CERTIFICATE EXPIRED: no renewal succeeded in time; this workload has no valid identity until the CA answers',
      );
      this.emit('expired', this.status());
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
    this.#expiryTimer.unref();
  }

  async #writeFiles(dir: string, c: Current): Promise<void> {
    await mkdir(dir, { recursive: true });
    // Each file is replaced whole; between the renames a reader may pair a new key with the
    // old chain, so file consumers reload when cert-chain.pem changes (written after the key).
    await writeFileAtomic(join(dir, OUTPUT_FILES.key), c.keyPem, 0o600);
    await writeFileAtomic(join(dir, OUTPUT_FILES.chain), c.chainPem);
    await writeFileAtomic(join(dir, OUTPUT_FILES.bundle), c.trustBundlePem);
  }
}
