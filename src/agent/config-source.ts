import type { PolicyView } from './decide.ts';

/**
 * Where the agent's allowlist comes from. The directory source watches
 * files; a control-plane stream (gRPC) will implement the same interface.
 * A source hands out snapshots: a compiled policy and what it came from.
 * It never replaces a good snapshot with a bad one.
 */

export interface PolicySnapshot {
  policy: PolicyView;
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

export interface ConfigStatus {
  /** `directory /etc/egressd/config`, `grpc ...` */
  source: string;
  current: Omit<PolicySnapshot, 'policy'> | null;
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
  status(): ConfigStatus;
  close(): Promise<void>;
}
