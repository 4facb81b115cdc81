/**
 * One error type for the whole project. Every error carries a stable `code`
 * (documented in docs/errors.md, checked by test/unit/core/errors.test.ts)
 * and optional context, and chains its cause.
 */
export const ERROR_CODES = {
  EGRESSD_ERR_CONFIG_READ: 'a config file or directory could not be read',
  EGRESSD_ERR_CONFIG_INVALID: 'the allowlist (ServiceEntry, DestinationRule, Sidecar) failed validation',
  EGRESSD_ERR_USAGE: 'a command was called with wrong arguments or flags',
  EGRESSD_ERR_ENV: 'an environment variable holds a value that cannot be used',
  EGRESSD_ERR_IPTABLES: 'iptables-restore is missing or refused the rules',
  EGRESSD_ERR_ORIGINAL_DST: 'the original destination of a redirected connection could not be read',
  EGRESSD_ERR_RELAY: "the agent's relay thread (its native addon) could not take a connection",
  EGRESSD_ERR_UPSTREAM: 'the upstream (original destination or gateway) could not be reached',
  EGRESSD_ERR_LISTEN: 'a listener could not bind its address',
  EGRESSD_ERR_ADMIN_UNREACHABLE: 'an agent admin endpoint could not be queried',
  EGRESSD_ERR_AUDIT_LOG: 'the audit log file could not be opened',
  EGRESSD_ERR_PKI: 'certificate or key material could not be read, created or parsed',
  EGRESSD_ERR_CA_REQUEST: 'the CA refused or failed a certificate request',
  EGRESSD_ERR_CERT_CHAIN: 'an issued certificate chain failed verification (identity, signature, validity or trust bundle)',
  EGRESSD_ERR_TOKEN: 'a service-account token could not be read, minted or verified',
  EGRESSD_ERR_RESOLV_CONF: 'the resolv.conf whose nameservers the DNS proxy forwards to could not be read or names none',
  EGRESSD_ERR_LAB: 'a step of the network-namespace lab (transparent demo, end-to-end tests, benchmarks) failed: a command, or a condition waited for',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class EgressdError extends Error {
  readonly code: ErrorCode;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EgressdError';
    this.code = code;
    this.context = Object.freeze({ ...(options.context ?? {}) });
  }
}

/** Message of any thrown value, for logs and audit records. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
