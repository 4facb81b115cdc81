import test from 'ava';
import { readFile } from 'node:fs/promises';
import { SPEC_FIELDS, type FieldTable } from '../../../src/policy/index.ts';

/** Every field the loader knows is in docs/allowlist.md with the same status, and nothing else is. */

function flatten(table: FieldTable, prefix: string, out: Map<string, string>): Map<string, string> {
  for (const [key, spec] of Object.entries(table)) {
    const path = `${prefix}${key}`;
    out.set(path, spec.support === 'implemented' ? 'implemented' : 'warned');
    if (spec.fields) flatten(spec.fields, `${path}.`, out);
    if (spec.each) flatten(spec.each, `${path}[].`, out);
  }
  return out;
}

async function documented(kind: string): Promise<Map<string, string>> {
  const doc = await readFile(new URL('../../../docs/allowlist.md', import.meta.url), 'utf8');
  const section = doc.split(/^### /m).find((s) => s.startsWith(`${kind}\n`)) ?? '';
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([^`]+)` \| (implemented|warned) \|/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

for (const [kind, table] of Object.entries(SPEC_FIELDS)) {
  test(`the ${kind} field table in docs/allowlist.md matches the loader`, async (t) => {
    t.deepEqual(Object.fromEntries(await documented(kind)), Object.fromEntries(flatten(table, 'spec.', new Map())));
  });
}
