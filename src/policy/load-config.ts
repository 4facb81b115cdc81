import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import { parseConfigTexts, type ConfigText } from './parse-text.ts';
import type { Problem } from './problem.ts';
import type { LoadOptions, LoadedConfig } from './resources.ts';

/**
 * Reads allowlist files and directories (recursively, `*.yaml` and `*.yml`,
 * in name order) and validates them as one allowlist. A path that cannot be
 * read is an error Problem, never an exception.
 */
export async function loadConfig(paths: readonly string[], options: LoadOptions = {}): Promise<LoadedConfig> {
  const texts: ConfigText[] = [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const path of paths) await collect(path, true, texts, problems, seen);
  return parseConfigTexts(texts, options, problems);
}

const YAML_FILE = /\.ya?ml$/i;

async function collect(path: string, explicit: boolean, texts: ConfigText[], problems: Problem[], seen: Set<string>): Promise<void> {
  const fail = (message: string): void => {
    problems.push({ severity: 'error', file: path, line: 0, col: 0, message });
  };
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    fail(`cannot read: ${describe(err)}`);
    return;
  }
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (err) {
      fail(`cannot read directory: ${describe(err)}`);
      return;
    }
    const before = texts.length;
    for (const name of names) {
      if (name.startsWith('.')) continue; // ..data and friends of mounted ConfigMaps
      const child = join(path, name);
      let childInfo;
      try {
        childInfo = await stat(child);
      } catch (err) {
        problems.push({ severity: 'error', file: child, line: 0, col: 0, message: `cannot read: ${describe(err)}` });
        continue;
      }
      if (childInfo.isDirectory() || YAML_FILE.test(name)) await collect(child, false, texts, problems, seen);
    }
    if (explicit && texts.length === before) {
      problems.push({ severity: 'warning', file: path, line: 0, col: 0, message: 'no *.yaml or *.yml files in this directory' });
    }
    return;
  }
  try {
    // The same file reached twice (given twice, or through a symlink) is one file.
    const real = await realpath(path);
    if (seen.has(real)) return;
    seen.add(real);
    texts.push({ filename: path, text: await readFile(path, 'utf8') });
  } catch (err) {
    fail(`cannot read: ${describe(err)}`);
  }
}

function describe(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return errorMessage(err);
}
