import { normalizeHost } from './net.ts';

/**
 * Whether the requests on one HTTP/1 connection name the host it was allowed
 * for: the agent's keep-alive guard and the gateway's relay both refuse a
 * request that names another (a server behind a shared address would answer
 * it by its Host). A keep-alive client names its host the same way each time,
 * so the last name that matched, as sent, is kept and normalized only once.
 */
export class RequestHostCheck {
  /** The connection's host, normalized; null when its first request named none (HTTP/1.0). */
  readonly host: string | null;
  #matched: string | undefined;

  constructor(host: string | null) {
    this.host = host === null ? null : normalizeHost(host);
  }

  /** The first name a request gives (its Host, then its absolute-form target's host) that is not the connection's host. */
  other(host: string | null, targetHost: string | null): string | undefined {
    return this.#other(host) ?? this.#other(targetHost);
  }

  #other(name: string | null): string | undefined {
    if (name === null || name === this.#matched) return undefined;
    if (normalizeHost(name) !== this.host) return name;
    this.#matched = name;
    return undefined;
  }
}
