import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Runs the real bin/egressctl.js in a child process, from the repository root. */

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/egressctl.js', import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function egressctl(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(err);
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}
