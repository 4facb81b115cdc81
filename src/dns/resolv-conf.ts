import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { EgressdError } from '../core/errors.ts';

/**
 * The pod's original resolv.conf, read as glibc reads it: `nameserver`,
 * `search` (or `domain`; the last one wins), `options ndots: timeout:
 * attempts:`. Only the nameservers change what the proxy does: clients send
 * names already expanded by their search list, and the proxy forwards
 * exactly the name it was asked, so `search` and `ndots` are kept only to be
 * reported (/config_dump, logs).
 */
export interface ResolvConf {
  /** IP literals, in file order (an IPv6 scope such as `%eth0` is kept). */
  nameservers: readonly string[];
  search: readonly string[];
  ndots: number;
  /** Seconds per try (glibc caps it at 30). */
  timeout: number;
  /** Rounds over the nameservers (glibc caps it at 5). */
  attempts: number;
  /** Lines that were skipped, with why. */
  warnings: readonly string[];
}

const DEFAULTS = { ndots: 1, timeout: 5, attempts: 2 } as const;
const CAPS = { ndots: 15, timeout: 30, attempts: 5 } as const;

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  const options: { ndots: number; timeout: number; attempts: number } = { ...DEFAULTS };
  const warnings: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (line === '') return;
    const [keyword = '', ...args] = line.split(/\s+/);
    const where = `line ${index + 1}`;
    switch (keyword) {
      case 'nameserver': {
        const address = args[0] ?? '';
        if (isIP(address.replace(/%.*$/, '')) === 0) warnings.push(`${where}: nameserver "${address}" is not an IP address`);
        else nameservers.push(address);
        return;
      }
      case 'search':
      case 'domain':
        search = args.map((d) => d.replace(/\.$/, '').toLowerCase()).filter((d) => d !== '');
        return;
      case 'options':
        for (const option of args) {
          const m = /^(ndots|timeout|attempts):(\d+)$/.exec(option);
          if (m) options[m[1] as keyof typeof CAPS] = Math.min(Number(m[2]), CAPS[m[1] as keyof typeof CAPS]);
        }
        return;
      default:
        // sortlist, lookup and the like do not change what is forwarded.
        return;
    }
  });
  if (options.timeout === 0) options.timeout = 1;
  if (options.attempts === 0) options.attempts = 1;
  return Object.freeze({ nameservers: Object.freeze(nameservers), search: Object.freeze(search), ...options, warnings: Object.freeze(warnings) });
}

/** Reads and parses; a file that cannot be read or names no nameserver is EGRESSD_ERR_RESOLV_CONF. */
export async function readResolvConf(path: string): Promise<ResolvConf> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new EgressdError('EGRESSD_ERR_RESOLV_CONF', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err, context: { path } });
  }
  const conf = parseResolvConf(text);
  if (conf.nameservers.length === 0) {
    // glibc would fall back to 127.0.0.1, which in a pod is the proxy itself.
    throw new EgressdError('EGRESSD_ERR_RESOLV_CONF', `${path} names no nameserver to forward to${conf.warnings.length > 0 ? ` (${conf.warnings.join('; ')})` : ''}`, {
      context: { path },
    });
  }
  return conf;
}
