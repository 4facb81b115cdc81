/**
 * The allowlist engine: load and validate Istio ServiceEntry,
 * DestinationRule and Sidecar resources, compile them once, decide per
 * connection. Pure except `loadConfig`, which reads files.
 */
export type { DecideInput, Decision, DecisionReason, PolicyMode, PortProtocol, TlsOrigination, Upstream } from './decision.ts';
export { formatProblem, formatFieldPath, type FieldPath, type Problem, type Severity, type SourcePosition } from './problem.ts';
export {
  DEFAULT_NAMESPACE,
  DEFAULT_ROOT_NAMESPACE,
  MODE_LABEL,
  type ClientTlsSettings,
  type DestinationRuleResource,
  type LoadOptions,
  type LoadedConfig,
  type PolicyResource,
  type PortTls,
  type Resolution,
  type ServiceEntryEndpoint,
  type ServiceEntryPort,
  type ServiceEntryResource,
  type SidecarEgressHost,
  type SidecarResource,
  type TlsMode,
} from './resources.ts';
export { loadConfig } from './load-config.ts';
export { parseConfigText, parseConfigTexts, type ConfigText } from './parse-text.ts';
export { compilePolicy, Policy, type Destination, type NameInput, type PolicySummary } from './policy.ts';
export type { Explanation, NearMiss, NearMissReason, RulePort, RuleRef } from './explain.ts';
export { SPEC_FIELDS, type FieldSpec, type FieldTable, type Support } from './fields.ts';
export type { ConfigEvent, ConfigSource, ConfigStatus, PolicySnapshot, ReloadOutcome } from './config-source.ts';
export { directorySource, type DirectorySourceOptions } from './directory-source.ts';
