import type { Policy } from './policy.ts';
import type { LoadedConfig } from './resources.ts';

/**
 * Where an allowlist comes from, for the agent and the gateway alike. The
 * directory source (directory-source.ts) follows files; a control-plane
 * stream (gRPC) will implement the same interface, and both components take
 * it without change. A source hands out snapshots: a compiled policy and
 * what it came from. It never replaces a good snapshot with a bad one.
 */

export interface PolicySnapshot {
  policy: Policy;
  /** The resources the policy was compiled from (the gateway reads their labels and addresses). */
  config: LoadedConfig;
  /** Increments with each applied snapshot, from 1. */
  version: number;
  loadedAt: Date;
  /** Where it came from: file paths, or the control plane's version. */
  files: readonly string[];
  /** Counts of what it holds, for /config_dump. */
  summary: Readonly<Record<string, number>>;
  /** Problems that did not prevent loading, formatted. */
  warnings: readonly string[];
}

export type ConfigEvent =
  | { type: 'applied'; snapshot: PolicySnapshot }
  /** A new config was refused; the previous snapshot (if any) stays in force. */
  | { type: 'rejected'; problems: readonly string[] };

/** What a check for a new config did: applied one, found nothing new, or refused what it found. */
export type ReloadOutcome = 'loaded' | 'unchanged' | 'failed';

export interface ConfigStatus {
  /** `directory /etc/egressd/config`, `grpc ...` */
  source: string;
  current: Omit<PolicySnapshot, 'policy' | 'config'> | null;
  lastAttemptAt: string | null;
  /** Problems of the last refused config, cleared by the next applied one. */
  lastError: readonly string[] | null;
  reloads: number;
  failures: number;
}

export interface ConfigSource {
  /** Loads once (resolving whether or not that load was good), then follows changes. */
  start(): Promise<void>;
  current(): PolicySnapshot | undefined;
  /** Listens to applied and rejected configs; returns the unsubscribe function. */
  subscribe(listener: (event: ConfigEvent) => void): () => void;
  /** Looks for a change now, as the source does by itself; `force` loads even an unchanged config. */
  reload(force?: boolean): Promise<ReloadOutcome>;
  status(): ConfigStatus;
  close(): Promise<void>;
}
