/**
 * Decisions per second and ns per decision of the compiled allowlist at
 * 10, 1,000 and 10,000 generated ServiceEntries, for hits (exact name,
 * wildcard, CIDR) and misses (unknown name, known name on a wrong port).
 * Run: node --import tsx bench/policy-decide.bench.ts
 */
import { compilePolicy, parseConfigText, type DecideInput, type Policy } from '../src/policy/index.ts';

const NAMESPACES = 20;
const SAMPLE = 1024;
const RUNS = 7;

function serviceEntries(count: number): string {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    const ns = `team-${i % NAMESPACES}`;
    const wildcard = i % 10 === 0;
    const host = wildcard ? `"*.cdn-${i}.example.net"` : `api-${i}.vendor-${i % 97}.example.com`;
    const exportTo = i % 3 === 0 ? '["."]' : '["*"]';
    const address = i % 50 === 0 ? `\n  addresses: ["10.${(i >> 8) & 255}.${i & 255}.0/24"]` : '';
    docs.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se-${i}, namespace: ${ns}}
spec:
  hosts: [${host}]${address}
  ports: [{number: 443, name: tls, protocol: TLS}, {number: 80, name: http, protocol: HTTP, targetPort: 443}]
  resolution: ${wildcard ? 'NONE' : 'DNS'}
  exportTo: ${exportTo}`);
  }
  docs.push(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: team-1}
spec:
  egress: [{hosts: ["./*", "*/*.example.com"]}]`);
  return docs.join('\n---\n');
}

function inputs(count: number, kind: string): DecideInput[] {
  const out: DecideInput[] = [];
  for (let k = 0; k < SAMPLE; k++) {
    const i = (k * 7919) % count;
    const e = i % 10 === 0 ? i + 1 : i; // an entry with an exact host
    const exactHost = `api-${e}.vendor-${e % 97}.example.com`;
    const sourceNamespace = `team-${e % NAMESPACES}`; // the entry's own namespace: visible even with exportTo "."
    switch (kind) {
      case 'hit exact':
        out.push({ host: exactHost, port: 443, sourceNamespace });
        break;
      case 'hit wildcard': {
        const w = i - (i % 10);
        out.push({ host: `img.static.cdn-${w}.example.net`, port: 443, sourceNamespace: `team-${w % NAMESPACES}` });
        break;
      }
      case 'hit CIDR': {
        const a = i - (i % 50);
        out.push({ host: `10.${(a >> 8) & 255}.${a & 255}.7`, port: 443, sourceNamespace: `team-${a % NAMESPACES}` });
        break;
      }
      case 'miss unknown':
        out.push({ host: `www.unknown-${k}.example.org`, port: 443, sourceNamespace });
        break;
      case 'miss port':
        out.push({ host: exactHost, port: 8443, sourceNamespace });
        break;
    }
  }
  return out;
}

/** Best of several runs: on a shared machine the slowest runs measure the neighbours, not the code. */
function measure(policy: Policy, sample: readonly DecideInput[]): { perSecond: number; ns: number; allowed: number } {
  for (let i = 0; i < 200_000; i++) policy.decide(sample[i & (SAMPLE - 1)]!); // warm up the JIT
  const rounds = 500_000;
  let best = Infinity;
  let allowed = 0;
  for (let run = 0; run < RUNS; run++) {
    allowed = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) if (policy.decide(sample[i & (SAMPLE - 1)]!).allow) allowed++;
    best = Math.min(best, Number(process.hrtime.bigint() - start) / rounds);
  }
  return { perSecond: Math.round(1e9 / best), ns: best, allowed: allowed / rounds };
}

const KINDS = ['hit exact', 'hit wildcard', 'hit CIDR', 'miss unknown', 'miss port'];
console.log(`node ${process.version}, ${SAMPLE} distinct inputs per case, best of ${RUNS} runs`);
console.log('entries  case           decisions/s   ns/decision  allowed  (load+compile)');
for (const count of [10, 1_000, 10_000]) {
  const t0 = process.hrtime.bigint();
  const config = parseConfigText(serviceEntries(count), `generated-${count}.yaml`);
  if (config.errors.length > 0) throw new Error(`generated config is invalid: ${config.errors[0]!.message}`);
  const policy = compilePolicy(config);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  for (const kind of KINDS) {
    const r = measure(policy, inputs(count, kind));
    console.log(
      `${String(count).padStart(7)}  ${kind.padEnd(13)} ${r.perSecond.toLocaleString('en-US').padStart(12)}  ${r.ns.toFixed(0).padStart(11)}  ${(r.allowed * 100).toFixed(0).padStart(6)}%  ${kind === KINDS[0] ? `${loadMs.toFixed(0)} ms` : ''}`,
    );
  }
}
