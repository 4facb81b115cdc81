import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { formatAuditTable } from '../cli/audit-view.ts';
import type { AuditRecord } from '../core/audit.ts';
import { netnsArgv } from '../lab/netns.ts';

/**
 * How both demos show what happens: numbered headings, real commands with
 * their output, one line per request with what came back, the audit records
 * as a table, and the list of surprises that makes a demo exit 1.
 */
export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export function heading(text: string): void {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

export function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function indent(text: string, levels = 1): string {
  return text.replace(/^/gm, '  '.repeat(levels));
}

/**
 * Runs a real command and shows it as `$ shown` with its output and exit code.
 * Asynchronous: what it asks (an agent) may run in this very process.
 */
export async function showCommand(shown: string, argv: readonly string[]): Promise<number | null> {
  say(`$ ${shown}`);
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const [code] = (await once(child, 'close')) as [number | null];
  say(`${indent(output.trimEnd())}\n  (exit ${code})`);
  return code;
}

/** The real egressctl, as a user would type it; `netns`: run inside that network namespace (the pod's). */
export function egressctl(args: readonly string[], options: { netns?: string } = {}): Promise<number | null> {
  const argv = [process.execPath, `${REPO}bin/egressctl.js`, ...args];
  if (options.netns === undefined) return showCommand(`egressctl ${args.join(' ')}`, argv);
  return showCommand(`egressctl ${args.join(' ')}      (in the pod namespace)`, netnsArgv(options.netns, argv[0]!, argv.slice(1)));
}

/** One request of the application: what it was, what came back, and the body or error under it. */
export function showResult(what: string, result: string, detail = ''): void {
  say(`${what}\n  -> ${result}${detail.trim() === '' ? '' : `\n${indent(detail.trimEnd(), 2)}`}`);
}

/** Audit records as objects, parsed from the JSON lines a component writes to `destination`. */
export function auditCollector(): { records: AuditRecord[]; destination: Writable } {
  const records: AuditRecord[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') records.push(JSON.parse(line) as AuditRecord);
      done();
    },
  });
  return { records, destination };
}

/** Shown in full by label, so that a reader (and the demo's test) can find it: `label, in full:` then the JSON. */
export function showInFull(label: string, value: unknown): void {
  say(`\n${label}, in full:\n${JSON.stringify(value ?? null, null, 2)}`);
}

/** The records as a table, then `inFull` (the first record it matches) as its JSON. */
export function showAuditRecords(records: readonly AuditRecord[], inFull: { label: string; match: (r: AuditRecord) => boolean }): void {
  say(`${formatAuditTable(records)}\n\n${inFull.label}, in full:`);
  say(JSON.stringify(records.find(inFull.match) ?? null, null, 2));
}

/** What the demo saw that the allowlists do not say: the exit code, 1 when there is anything. */
export function reportSurprises(surprises: readonly string[]): number {
  if (surprises.length === 0) return 0;
  process.stderr.write(`\nThe demo did not go as it should:\n${surprises.map((s) => `  - ${s}`).join('\n')}\n`);
  return 1;
}
