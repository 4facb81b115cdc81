import { CHAIN_PREFIX, type Rule, type RuleSet, type Table } from './rules.ts';

/**
 * Renders a RuleSet as `iptables-restore --noflush` input. One restore run is
 * one transaction: if any line is refused, nothing changes.
 *
 * Install is idempotent without knowing the current state for the rules in
 * egressd's own chains (declaring `:CHAIN - [0:0]` creates the chain or
 * flushes it). The jumps into them from built-in chains cannot be flushed
 * that way, so the caller passes what `iptables-save` shows (SavedState) and
 * the jumps found there are deleted first. The same goes for cleanup, which
 * is the rule list reversed: jumps out, chains emptied, chains deleted.
 */

/** What egressd finds of itself in one table of `iptables-save` output. */
export interface SavedTable {
  /** Own chains present (names starting with EGRESSD_). */
  chains: string[];
  /** Rules of other chains that jump into own chains, as `-A CHAIN ...` lines. */
  jumps: string[];
}

export type SavedState = Partial<Record<Table, SavedTable>>;

const TABLE_ORDER: readonly Table[] = ['nat', 'filter'];

function isOwnChain(name: string): boolean {
  return name.startsWith(CHAIN_PREFIX);
}

/** Reads egressd's chains and the jumps into them from `iptables-save` text. */
export function parseSave(text: string): SavedState {
  const state: SavedState = {};
  let current: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) {
      const table = line.slice(1);
      current = (TABLE_ORDER as readonly string[]).includes(table) ? (state[table as Table] = { chains: [], jumps: [] }) : undefined;
    } else if (!current) {
      continue;
    } else if (line.startsWith(':')) {
      const name = line.slice(1).split(/\s+/)[0] ?? '';
      if (isOwnChain(name)) current.chains.push(name);
    } else if (line.startsWith('-A ')) {
      const tokens = line.split(/\s+/);
      const target = tokens[tokens.findIndex((t) => t === '-j' || t === '-g') + 1];
      if (!isOwnChain(tokens[1] ?? '') && target !== undefined && isOwnChain(target)) current.jumps.push(line);
    }
  }
  return state;
}

function ruleLine(action: '-A' | '-D', r: Rule): string {
  return [action, r.chain, ...r.spec].join(' ');
}

function tablesOf(rules: RuleSet, saved: SavedState | undefined): Table[] {
  return TABLE_ORDER.filter((t) => rules.chains.some((c) => c.table === t) || (saved?.[t]?.chains.length ?? 0) > 0 || (saved?.[t]?.jumps.length ?? 0) > 0);
}

function ownChains(rules: RuleSet, table: Table): string[] {
  return rules.chains.filter((c) => c.table === table).map((c) => c.name);
}

/**
 * Jumps to delete: the ones iptables-save showed. Without state (dry run) an
 * install assumes none, a cleanup assumes the planned ones, last added first.
 */
function jumpDeletions(rules: RuleSet, table: Table, saved: SavedState | undefined, mode: 'install' | 'cleanup'): string[] {
  if (saved) return (saved[table]?.jumps ?? []).map((line) => line.replace(/^-A /, '-D '));
  if (mode === 'install') return [];
  return rules.rules
    .filter((r) => r.table === table && !isOwnChain(r.chain))
    .map((r) => ruleLine('-D', r))
    .reverse();
}

/** Install text. `saved` is the current state; without it the namespace is assumed to hold no egressd rules. */
export function renderInstall(rules: RuleSet, saved?: SavedState): string {
  const out: string[] = [];
  for (const table of tablesOf(rules, saved)) {
    const planned = ownChains(rules, table);
    const stale = (saved?.[table]?.chains ?? []).filter((c) => !planned.includes(c));
    out.push(`*${table}`);
    for (const chain of [...planned, ...stale]) out.push(`:${chain} - [0:0]`);
    out.push(...jumpDeletions(rules, table, saved, 'install'));
    for (const chain of stale) out.push(`-X ${chain}`);
    for (const r of rules.rules) if (r.table === table) out.push(ruleLine('-A', r));
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/**
 * Cleanup text: the install reversed. Without `saved` the planned rules are
 * assumed installed; with it, only what is there is removed, and an empty
 * string means there is nothing to remove.
 */
export function renderCleanup(rules: RuleSet, saved?: SavedState): string {
  const out: string[] = [];
  for (const table of [...TABLE_ORDER].reverse()) {
    const chains = saved
      ? [...(saved[table]?.chains ?? [])].reverse()
      : ownChains(rules, table).reverse();
    const jumps = jumpDeletions(rules, table, saved, 'cleanup');
    if (chains.length === 0 && jumps.length === 0) continue;
    out.push(`*${table}`);
    // Declaring flushes each chain, so its rules go without one -D per rule.
    for (const chain of chains) out.push(`:${chain} - [0:0]`);
    out.push(...jumps);
    for (const chain of chains) out.push(`-X ${chain}`);
    out.push('COMMIT');
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
