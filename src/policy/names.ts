import { isIP } from 'node:net';
import { normalizeHost } from '../core/net.ts';

/** Kubernetes DNS-1123 label: namespaces, port names. */
export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value);
}

/** Kubernetes DNS-1123 subdomain: resource names. */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= 253 && value.split('.').every((label) => label !== '' && isDns1123Label(label));
}

/** A host label after punycode: letters, digits, inner hyphens (underscores too, as some real names carry them). */
function isHostLabel(label: string): boolean {
  return label.length >= 1 && label.length <= 63 && /^[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?$/.test(label);
}

export type HostCheck = { ok: true; host: string; wildcard: boolean } | { ok: false; message: string };

/**
 * Validates and normalizes a ServiceEntry/DestinationRule/Sidecar host: an
 * exact DNS name or `*.suffix`. A bare `*` is refused here; callers that
 * accept it (Sidecar egress) check for it first.
 */
export function checkHostPattern(raw: string): HostCheck {
  const text = raw.trim();
  if (text === '*') {
    return { ok: false, message: 'a bare "*" would allow every destination; list the hosts, or use outboundTrafficPolicy ALLOW_ANY' };
  }
  if (isIP(text.replace(/^\[|\]$/g, '')) !== 0) {
    return { ok: false, message: `"${raw}" is an IP address; IP addresses and CIDRs belong in spec.addresses` };
  }
  const wildcard = text.startsWith('*.');
  if ((wildcard ? text.slice(2) : text).includes('*')) {
    return { ok: false, message: `"${raw}": a wildcard must be the whole first label, as in *.example.com` };
  }
  const host = normalizeHost(text);
  const name = wildcard ? host.slice(2) : host;
  if (host === '' || name.length > 253 || !name.split('.').every(isHostLabel)) {
    return { ok: false, message: `"${raw}" is not a valid DNS name` };
  }
  return { ok: true, host, wildcard };
}

/** Whether host pattern `pattern` covers the concrete or wildcard name `name` (both normalized). */
export function patternCovers(pattern: string, name: string): boolean {
  if (pattern === '*' || pattern === name) return true;
  if (!pattern.startsWith('*.')) return false;
  const suffix = pattern.slice(1);
  return name.length > suffix.length && name.endsWith(suffix);
}
