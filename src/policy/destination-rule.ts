import { checkHostPattern } from './names.ts';
import type { FieldPath } from './problem.ts';
import type { ResourceContext } from './resource-context.ts';
import type { ClientTlsSettings, DestinationRuleResource, PortTls, ResourceMeta, TlsMode } from './resources.ts';
import { asArray, asObject, asString, readExportTo, readPort, stringItems, type Fields } from './spec-reader.ts';

/**
 * The meaning checks of a DestinationRule. egressd reads only its client TLS
 * settings: they tell the gateway to originate TLS towards the host.
 */

const TLS_MODES: readonly TlsMode[] = ['DISABLE', 'SIMPLE', 'MUTUAL'];

export function readDestinationRule(ctx: ResourceContext, meta: ResourceMeta, spec: Fields): DestinationRuleResource {
  let host = '';
  const raw = asString(spec.host);
  if (spec.host === undefined) ctx.error(['spec', 'host'], 'required');
  else if (raw?.trim() === '*') ctx.error(['spec', 'host'], 'a bare "*" is not supported: name the host, or *.suffix');
  else if (raw !== undefined) {
    const check = checkHostPattern(raw);
    if (check.ok) host = check.host;
    else ctx.error(['spec', 'host'], check.message);
  }
  const policy = asObject(spec.trafficPolicy) ?? {};
  const rule: DestinationRuleResource = {
    ...meta,
    kind: 'DestinationRule',
    host,
    portTls: readPortLevelTls(ctx, policy),
    exportTo: readExportTo(ctx, spec.exportTo, ['spec', 'exportTo']),
    hostSource: ctx.position(['spec', 'host']),
  };
  const tls = readTls(ctx, policy.tls, ['spec', 'trafficPolicy', 'tls']);
  if (tls !== undefined) rule.tls = tls;
  return rule;
}

function readPortLevelTls(ctx: ResourceContext, policy: Fields): PortTls[] {
  const out: PortTls[] = [];
  const seen = new Map<number, number>();
  asArray(policy.portLevelSettings).forEach((item, i) => {
    const settings = asObject(item);
    if (settings === undefined) return;
    const path = ['spec', 'trafficPolicy', 'portLevelSettings', i];
    const port = asObject(settings.port);
    if (port?.number === undefined) {
      ctx.error([...path, 'port', 'number'], 'required');
      return;
    }
    const number = readPort(ctx, port.number, [...path, 'port', 'number']);
    if (number === undefined) return;
    if (seen.has(number)) {
      ctx.error([...path, 'port', 'number'], `duplicate port ${number} (also spec.trafficPolicy.portLevelSettings[${seen.get(number)}])`);
      return;
    }
    seen.set(number, i);
    // Port-level fields replace the rule-level ones they set; an unset tls inherits.
    const tls = readTls(ctx, settings.tls, [...path, 'tls']);
    if (tls !== undefined) out.push({ port: number, tls });
  });
  return out;
}

function readTls(ctx: ResourceContext, value: unknown, path: FieldPath): ClientTlsSettings | undefined {
  const tls = asObject(value);
  if (tls === undefined) return undefined;
  const modeText = asString(tls.mode) ?? 'DISABLE';
  const mode = TLS_MODES.find((m) => m === modeText);
  if (mode === undefined) {
    // Other values already failed the schema's enum.
    if (modeText === 'ISTIO_MUTUAL') {
      ctx.error([...path, 'mode'], 'ISTIO_MUTUAL is not supported by egressd (the upstream is outside the mesh): use MUTUAL with credentialName');
    }
    return undefined;
  }
  const settings: ClientTlsSettings = { mode };
  const sni = asString(tls.sni);
  if (sni !== undefined) {
    const check = checkHostPattern(sni);
    if (!check.ok || check.wildcard) ctx.error([...path, 'sni'], `"${sni}" must be a DNS name`);
    else settings.sni = check.host;
  }
  const sans = stringItems(tls.subjectAltNames).map(([, s]) => s);
  if (sans.length > 0) settings.subjectAltNames = sans;
  const ca = asString(tls.caCertificates);
  if (ca !== undefined) settings.caCertificates = ca;
  const credentialName = asString(tls.credentialName);
  if (credentialName !== undefined) settings.credentialName = credentialName;
  if (typeof tls.insecureSkipVerify === 'boolean') {
    settings.insecureSkipVerify = tls.insecureSkipVerify;
    if (tls.insecureSkipVerify && mode !== 'DISABLE') {
      ctx.warn([...path, 'insecureSkipVerify'], 'the upstream certificate will not be verified');
    }
  }
  if (mode === 'MUTUAL' && credentialName === undefined) {
    ctx.error([...path, 'credentialName'], 'mode MUTUAL requires credentialName (the Secret with the client certificate and key)');
  }
  return settings;
}
