import { spawn } from 'node:child_process';
import { EgressdError } from '../core/errors.ts';
import type { Backend } from './options.ts';
import { parseSave, type SavedState } from './render.ts';
import type { Family } from './rules.ts';

/** The save/restore pair for one family and backend, e.g. ip6tables-legacy-restore. */
export interface IptablesTools {
  save: string;
  restore: string;
}

export function toolsFor(backend: Backend, family: Family): IptablesTools {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const prefix = backend === 'default' ? base : `${base}-${backend}`;
  return { save: `${prefix}-save`, restore: `${prefix}-restore` };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      const missing = err.code === 'ENOENT';
      reject(
        new EgressdError('EGRESSD_ERR_IPTABLES', missing ? `${command} not found: install iptables in the init image, or pick another --backend` : `${command} could not be started: ${err.message}`, {
          cause: err,
          context: { command },
        }),
      );
    });
    // A restore that dies early closes stdin; its exit status says why, so EPIPE adds nothing.
    child.stdin.on('error', () => {});
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** What egressd has installed in this network namespace for one family, per `iptables-save`. */
export async function readState(tools: IptablesTools): Promise<SavedState> {
  const result = await run(tools.save, []);
  if (result.code !== 0) {
    throw new EgressdError('EGRESSD_ERR_IPTABLES', `${tools.save} failed (exit ${result.code}): ${result.stderr.trim()}`, { context: { command: tools.save, stderr: result.stderr } });
  }
  return parseSave(result.stdout);
}

/** Applies restore text in one transaction (--noflush keeps everyone else's rules). */
export async function applyRestore(tools: IptablesTools, text: string): Promise<void> {
  const result = await run(tools.restore, ['--noflush'], text);
  if (result.code !== 0) {
    throw new EgressdError('EGRESSD_ERR_IPTABLES', `${tools.restore} refused the rules (exit ${result.code}), nothing was changed: ${result.stderr.trim()}`, {
      context: { command: tools.restore, stderr: result.stderr },
    });
  }
}
