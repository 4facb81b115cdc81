import type { PolicyMode } from './decision.ts';
import { checkHostPattern, isDns1123Label } from './names.ts';
import type { ResourceContext } from './resource-context.ts';
import { MODE_LABEL, type ResourceMeta, type SidecarEgressHost, type SidecarResource } from './resources.ts';
import { asArray, asObject, readWorkloadSelector, stringItems, type Fields } from './spec-reader.ts';

/**
 * The meaning checks of a Sidecar: its outbound mode (and egressd's REPORT
 * label) and the `namespace/host` entries that narrow what a workload sees.
 */

export function readSidecar(ctx: ResourceContext, meta: ResourceMeta, spec: Fields): SidecarResource {
  const sidecar: SidecarResource = { ...meta, kind: 'Sidecar' };
  const selector = readWorkloadSelector(ctx, spec, 'it applies to every workload in the namespace');
  if (selector !== undefined) sidecar.workloadSelector = selector;
  const egress = readEgress(ctx, spec);
  if (egress !== undefined) sidecar.egressHosts = egress;
  const mode = readMode(ctx, meta, spec);
  if (mode !== undefined) sidecar.mode = mode;
  return sidecar;
}

function readMode(ctx: ResourceContext, meta: ResourceMeta, spec: Fields): PolicyMode | undefined {
  const outbound = asObject(spec.outboundTrafficPolicy)?.mode;
  const declared: PolicyMode | undefined = outbound === 'REGISTRY_ONLY' || outbound === 'ALLOW_ANY' ? outbound : undefined;
  const label = meta.labels[MODE_LABEL];
  if (label === undefined) return declared;
  if (label !== 'report') {
    ctx.error(['metadata', 'labels', MODE_LABEL], `"${label}" is not a mode egressd knows: the only value is "report"`);
    return declared;
  }
  if (declared === 'ALLOW_ANY') {
    ctx.warn(['spec', 'outboundTrafficPolicy', 'mode'], `label ${MODE_LABEL}: report overrides ALLOW_ANY: denials are reported, not enforced`);
  }
  return 'REPORT';
}

function readEgress(ctx: ResourceContext, spec: Fields): SidecarEgressHost[] | undefined {
  const listeners = asArray(spec.egress);
  if (listeners.length === 0) return undefined;
  const hosts: SidecarEgressHost[] = [];
  listeners.forEach((item, i) => {
    const listener = asObject(item);
    if (listener === undefined) return;
    const path = ['spec', 'egress', i, 'hosts'];
    if (asArray(listener.hosts).length === 0) {
      ctx.error(path, 'at least one "namespace/host" entry is required');
      return;
    }
    for (const [j, raw] of stringItems(listener.hosts)) {
      const parsed = parseEgressHost(raw);
      if (typeof parsed === 'string') ctx.error([...path, j], parsed);
      else hosts.push(parsed);
    }
  });
  return hosts;
}

/** `ns/host`, `./host`, `*\/host`, `~/host`, `ns/*`; a string is the error. */
function parseEgressHost(raw: string): SidecarEgressHost | string {
  const slash = raw.indexOf('/');
  if (slash < 0) return `"${raw}" must have the form namespace/host (e.g. ./api.example.com, */*.example.com, payments/*)`;
  const namespace = raw.slice(0, slash);
  const hostText = raw.slice(slash + 1);
  if (!(namespace === '*' || namespace === '.' || namespace === '~' || isDns1123Label(namespace))) {
    return `"${raw}": namespace "${namespace}" must be "*", ".", "~" or a namespace name`;
  }
  if (hostText === '*') return { namespace, host: '*' };
  const check = checkHostPattern(hostText);
  if (!check.ok) return `"${raw}": ${check.message}`;
  return { namespace, host: check.host };
}
