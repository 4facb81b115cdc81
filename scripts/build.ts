/**
 * The production build: `npm run build` bundles the two command-line programs into dist/
 * (dist/egressd.mjs, dist/egressctl.mjs), which run with plain `node`, no TypeScript loader.
 *
 * Why a bundle and not tsx at runtime: tsx compiles every file at startup (seconds on a busy
 * node) and keeps its loader thread and caches alive, ~40 MiB of the agent's RSS; the agent's
 * budget is 60 MB (issue 5). Code splitting keeps each subcommand's libraries in their own
 * chunks, loaded by the dispatcher's dynamic import: `egressd agent` never loads the control
 * plane's gRPC server nor the Kubernetes client.
 *
 * Chunks live in dist/chunks/, two levels below the package root like the sources in
 * src/<component>/, so that paths a module computes from `import.meta.url` (the control plane
 * reads proto/istio-ca.proto) resolve to the same files from dist/ as from src/.
 *
 * bin/ keeps running the sources through tsx, so that tests, the demo and development need no
 * build step; the benchmarks build before they start the agent, the container image runs
 * `node dist/egressd.mjs`.
 */
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags.ts';

export const PACKAGE_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** Where `npm run build` writes; the benchmarks run the agent from here. */
export const DIST_DIR = fileURLToPath(new URL('../dist/', import.meta.url));

/** Bundled CommonJS libraries call require() for Node's modules; ES modules have no require of their own. */
const REQUIRE_SHIM = "import { createRequire as __egressdCreateRequire } from 'node:module'; const require = __egressdCreateRequire(import.meta.url);";

/**
 * prom-client's index also loads its Pushgateway (node:https, node:zlib), Summary (tdigest) and
 * cluster aggregator, code egressd never runs: the agent's peak RSS is 0.6 MiB lower when the
 * bundles take the parts egressd uses from their own files. A source importing any other name
 * from 'prom-client' fails the build ("No matching export"); bin/ (tsx) still loads the index.
 */
const PROM_CLIENT_PARTS: Plugin = {
  name: 'prom-client-parts',
  setup(b) {
    b.onResolve({ filter: /^prom-client$/ }, () => ({ path: 'prom-client', namespace: 'prom-client-parts' }));
    b.onLoad({ filter: /.*/, namespace: 'prom-client-parts' }, () => ({
      resolveDir: PACKAGE_ROOT,
      contents: [
        "import Registry from 'prom-client/lib/registry.js';",
        "import Counter from 'prom-client/lib/counter.js';",
        "import Gauge from 'prom-client/lib/gauge.js';",
        "import Histogram from 'prom-client/lib/histogram.js';",
        'export { Registry, Counter, Gauge, Histogram };',
      ].join('\n'),
    }));
  },
};

/**
 * Node's own modules reach the bundles through require(), not as ES modules: the first ES import
 * of a builtin makes Node build its ES module facade, which reads every export once, getters
 * included. node:tls's `rootCertificates` then turns the ~140 bundled root certificates into PEM
 * strings that stay in the heap, and node:crypto's `webcrypto` loads the whole Web Crypto
 * implementation; neither is ever used. An empty process loading the agent's builtins as ES
 * modules: +1.0 MiB of RSS against require(). The sources keep their ES imports: esbuild's
 * interop hands them the same exports, read when used.
 */
const BUILTINS_AS_COMMONJS: Plugin = {
  name: 'builtins-as-commonjs',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) =>
      args.kind === 'import-statement' && args.namespace !== 'builtin-commonjs' && isBuiltin(args.path) ? { path: args.path, namespace: 'builtin-commonjs' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'builtin-commonjs' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

export function buildOptions(outdir: string): BuildOptions {
  return {
    absWorkingDir: PACKAGE_ROOT,
    entryPoints: { egressd: 'src/cli/egressd-main.ts', egressctl: 'src/cli/egressctl-main.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    banner: { js: REQUIRE_SHIM },
    // Smaller sources parse with less memory: the agent's startup peak is 1 MiB lower. Function and
    // class names are kept for stack traces and error names; the linked source maps (not loaded
    // unless `node --enable-source-maps`) map positions back to src/.
    minify: true,
    keepNames: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [PROM_CLIENT_PARTS, BUILTINS_AS_COMMONJS],
  };
}

/**
 * Builds into `outdir` and returns the path of the egressd entry. The previous build's files
 * are removed first (chunk names change with their content); private builds in dist/run-* stay.
 */
export async function buildDist(outdir: string = DIST_DIR): Promise<string> {
  for (const name of await readdir(outdir).catch(() => [])) {
    if (name === 'chunks' || name === 'meta.json' || /\.(mjs|map|txt)$/.test(name)) await rm(join(outdir, name), { recursive: true, force: true });
  }
  const { metafile } = await build(buildOptions(outdir));
  // What each output holds and imports: `npx esbuild --analyze` reads it, the build test checks it.
  await writeFile(join(outdir, 'meta.json'), JSON.stringify(metafile));
  return join(outdir, 'egressd.mjs');
}

/**
 * A build of its own for one process (a benchmark run), in dist/run-<pid>/: runs that overlap
 * on a shared machine never load chunks that another run is rewriting. Builds left by runs
 * whose process has ended are removed first.
 */
export function buildPrivateDist(): Promise<string> {
  privateDist ??= buildPrivateDistNow();
  return privateDist;
}

/** One private build per process, shared by the programs it starts: a second build would remove the chunks of the first. */
let privateDist: Promise<string> | undefined;

async function buildPrivateDistNow(): Promise<string> {
  const entries = await readdir(DIST_DIR).catch(() => []);
  for (const name of entries) {
    const pid = /^run-(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && Number(pid) !== process.pid && !isAlive(Number(pid))) await rm(join(DIST_DIR, name), { recursive: true, force: true });
  }
  return buildDist(join(DIST_DIR, `run-${process.pid}`));
}

/**
 * The environment a pod's container gives egressd: PATH, and NODE_OPTIONS when one is set to
 * profile a run. Not the benchmarking machine's own: NODE_EXTRA_CA_CERTS (set here to the whole
 * system bundle) alone makes Node hold ~140 more certificates, 0.7 MiB of the agent's peak RSS.
 */
export function productionEnv(): NodeJS.ProcessEnv {
  const { PATH, NODE_OPTIONS } = process.env;
  return { PATH: PATH ?? '/usr/bin:/bin', ...(NODE_OPTIONS === undefined ? {} : { NODE_OPTIONS }) };
}

/** Node arguments that start `egressd agent` as production does (its flags, the bundle), from a private build. */
export async function productionAgentArgs(): Promise<string[]> {
  return [...AGENT_NODE_FLAGS, await buildPrivateDist(), 'agent'];
}

/**
 * The same for `egressd gateway`, with Node's defaults: `--single-threaded-gc` and the agent's
 * flags were measured on the chain benchmark and changed nothing beyond its noise.
 */
export async function productionGatewayArgs(): Promise<string[]> {
  return [await buildPrivateDist(), 'gateway'];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const entry = await buildDist();
  process.stdout.write(`built ${entry}\n`);
}
