import test from 'ava';
import { spawn } from 'node:child_process';
import { netnsTests, host, REPO_ROOT } from './harness/index.ts';

/**
 * `egressd demo --transparent` end to end: it checks its own outcomes (exit 1
 * listing surprises), so exit 0 means every request went as the allowlists
 * say; here we also check that it leaves no namespace behind, whether it ends
 * or is interrupted, and that without root it explains itself and exits 2.
 */
const PREFIX = 'egx-';
const e2e = await netnsTests(PREFIX, 'transparent demo (skipped)');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function demo(argv: readonly string[], onStdout: (stdout: string, pid: number) => void = () => {}): Promise<Run> {
  const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => onStdout((stdout += d), child.pid!));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

const DEMO = [process.execPath, 'bin/egressd.js', 'demo', '--transparent', '--netns-prefix', PREFIX];

/** The pod and internet namespace names the demo printed in its first step. */
function namespacesOf(stdout: string): string[] {
  return [...stdout.matchAll(/^(?:pod|internet) +(\S+)/gm)].map((m) => m[1]!);
}

/** The JSON the demo prints under `<label>, in full:` (pretty-printed: it ends at the first `}` in column 0). */
function inFull(stdout: string, label: string): Record<string, unknown> {
  const marker = `${label}, in full:\n`;
  const start = stdout.indexOf(marker);
  if (start < 0) throw new Error(`"${label}" is not in the demo's output`);
  const json = stdout.slice(start + marker.length);
  return JSON.parse(json.slice(0, json.indexOf('\n}') + 2)) as Record<string, unknown>;
}

async function leftovers(): Promise<string[]> {
  return (await host(['ip', 'netns', 'list'])).split('\n').filter((line) => line.startsWith(PREFIX));
}

e2e('the transparent demo runs to the end, its requests decided as the allowlists say, and leaves no namespace', async (t) => {
  const run = await demo(DEMO);
  t.is(run.code, 0, `${run.stdout}\n${run.stderr}`);
  t.is(namespacesOf(run.stdout).length, 2, run.stdout);
  t.deepEqual(await leftovers(), []);
  const denied = inFull(run.stdout, 'The denied TLS connection');
  t.like(denied, { decision: 'deny', reason: 'no_matching_rule', host: 'exfil.attacker.test', host_source: 'sni', listener: 'outbound', dst: '10.77.0.1:443' });
  t.regex(String(denied.src), /^10\.77\.0\.2:\d+$/, 'the connection came from the pod, intercepted');
  const dns = inFull(run.stdout, 'The denied DNS query');
  t.like(dns, { decision: 'deny', reason: 'no_matching_rule', host: 'exfil.attacker.test', host_source: 'dns', protocol: 'dns', listener: 'dns', port: null, dst: null });
  t.regex(String(dns.src), /^10\.77\.0\.2:\d+$/, 'the query came from the pod, redirected to the agent');
});

e2e('Ctrl-C in the middle of the transparent demo still deletes its namespaces', async (t) => {
  let interrupted = false;
  const run = await demo(DEMO, (stdout, pid) => {
    if (!interrupted && stdout.includes('== 4.')) {
      interrupted = true;
      process.kill(pid, 'SIGINT');
    }
  });
  t.true(interrupted, run.stdout);
  t.is(run.code, 130, run.stderr);
  t.regex(run.stderr, /SIGINT: cleaning up/);
  t.is(namespacesOf(run.stdout).length, 2);
  t.deepEqual(await leftovers(), []);
});

test('without root, --transparent says what it needs and would do, and exits 2', async (t) => {
  const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=1000', '--regid=1000', '--clear-groups'] : [];
  const run = await demo([...asUser, process.execPath, 'bin/egressd.js', 'demo', '--transparent']);
  t.is(run.code, 2, run.stderr);
  t.regex(run.stderr, /needs root: it creates two network namespaces.*egressd init's iptables rules.*UID 1337.*UID 1000.*sudo npm run demo -- --transparent/);
  t.is(run.stdout, '');
});
