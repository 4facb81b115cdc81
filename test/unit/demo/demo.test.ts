import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** The README's first command: the demo checks its own outcomes (allowed 200, denied 403, one record each) and exits 1 otherwise. */
test('npm run demo (egressd demo) runs to the end and its requests are decided as the allowlists say', async (t) => {
  const child = spawn(process.execPath, ['bin/egressd.js', 'demo'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0, `${stdout}\n${stderr}`);
  const denied = JSON.parse(stdout.slice(stdout.indexOf('The denied CONNECT, in full:') + 'The denied CONNECT, in full:'.length)) as Record<string, unknown>;
  t.like(denied, { decision: 'deny', reason: 'no_matching_rule', host: 'exfil.attacker.test', port: 443, component: 'agent' });
});

test('the demo refuses arguments it does not know', async (t) => {
  const child = spawn(process.execPath, ['bin/egressd.js', 'demo', '--bogus'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  t.is(await new Promise<number | null>((resolve) => child.on('close', resolve)), 2);
  t.regex(stderr, /egressd demo: .*--bogus.*EGRESSD_ERR_USAGE/);
});
