import { compareClaims, type Claim } from './compiled.ts';

/**
 * Claims by host: one map for exact names, one for wildcards keyed by the
 * suffix after `*.`. A lookup walks the name's suffixes from the longest,
 * so an exact name beats any wildcard and a longer suffix beats a shorter.
 */
export class HostIndex {
  readonly exact = new Map<string, Claim[]>();
  /** `*.example.com` is stored under `example.com`. */
  readonly wildcard = new Map<string, Claim[]>();
  /**
   * Label counts of the wildcard suffixes, longest first: a lookup probes
   * only the suffixes that can exist, not every suffix of the name.
   */
  depths: readonly number[] = [];

  add(claim: Claim): void {
    const pattern = claim.pattern;
    const [map, key] = pattern.startsWith('*.') ? [this.wildcard, pattern.slice(2)] : [this.exact, pattern];
    const list = map.get(key);
    if (list === undefined) map.set(key, [claim]);
    else list.push(claim);
  }

  /** Sorts every list; call once when all claims are in. */
  seal(): void {
    for (const list of this.exact.values()) list.sort(compareClaims);
    for (const list of this.wildcard.values()) list.sort(compareClaims);
    const depths = new Set([...this.wildcard.keys()].map((suffix) => suffix.split('.').length));
    this.depths = [...depths].sort((a, b) => b - a);
  }

  /**
   * Every claim list that covers `host`, most specific first. For explain
   * and tests; `Policy.decide` walks the maps itself to avoid allocating.
   */
  matches(host: string): Claim[][] {
    const out: Claim[][] = [];
    const exact = this.exact.get(host);
    if (exact) out.push(exact);
    for (let dot = host.indexOf('.'); dot >= 0; dot = host.indexOf('.', dot + 1)) {
      const list = this.wildcard.get(host.slice(dot + 1));
      if (list) out.push(list);
    }
    return out;
  }
}
