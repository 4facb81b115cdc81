import { EgressdError } from '../core/errors.ts';

/**
 * Workload labels, which ServiceEntry workloadSelectors and Sidecars match
 * on: from `--labels app=web,tier=front` or from a Kubernetes downward API
 * file (`fieldRef: metadata.labels`), whose lines read `key="value"` with
 * the value quoted as Go's strconv.Quote does.
 */

const KEY = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function parseLabelPairs(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (eq < 0 || !KEY.test(key)) throw new EgressdError('EGRESSD_ERR_USAGE', `--labels: "${pair}" is not key=value with a valid label key`);
    labels[key] = pair.slice(eq + 1);
  }
  return labels;
}

export function parseLabelsFile(text: string, file: string): Record<string, string> {
  const labels: Record<string, string> = {};
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([^=]+)="(.*)"$/.exec(line.trim());
    const value = m ? unquote(m[2]!) : undefined;
    if (!m || !KEY.test(m[1]!) || value === undefined) {
      throw new EgressdError('EGRESSD_ERR_USAGE', `${file}:${i + 1}: expected key="value" (downward API labels format)`);
    }
    labels[m[1]!] = value;
  });
  return labels;
}

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v' };

/** The inside of a Go double-quoted string; undefined when an escape is invalid or a quote is bare. */
function unquote(body: string): string | undefined {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[++i];
    if (e !== undefined && e in SIMPLE_ESCAPES) {
      out += SIMPLE_ESCAPES[e];
      continue;
    }
    const width = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
    const hex = body.slice(i + 1, i + 1 + width);
    if (width === 0 || !/^[0-9a-fA-F]+$/.test(hex) || hex.length !== width) return undefined;
    out += String.fromCodePoint(parseInt(hex, 16));
    i += width;
  }
  return out;
}
