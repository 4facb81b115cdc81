import test from 'ava';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const WORKLOAD_ID = 'spiffe://cluster.local/ns/default/sa/checkout';

/** The JSON the demo prints under `<label>, in full:` (pretty-printed: it ends at the first `}` in column 0). */
function inFull(stdout: string, label: string): Record<string, unknown> {
  const marker = `${label}, in full:\n`;
  const start = stdout.indexOf(marker);
  if (start < 0) throw new Error(`"${label}" is not in the demo's output`);
  const json = stdout.slice(start + marker.length);
  return JSON.parse(json.slice(0, json.indexOf('\n}') + 2)) as Record<string, unknown>;
}

/**
 * The README's first command: the demo checks its own outcomes (allowed 200 through the gateway,
 * denied 403, one record each, XFCC with the workload) and exits 1 otherwise; the printed records
 * are checked here as objects too.
 */
test('npm run demo (egressd demo) runs to the end: denials by the allowlists, allowed traffic through the gateway with the workload in XFCC', async (t) => {
  const child = spawn(process.execPath, ['bin/egressd.js', 'demo'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0, `${stdout}\n${stderr}`);
  t.like(inFull(stdout, 'The denied CONNECT'), { decision: 'deny', reason: 'no_matching_rule', host: 'exfil.attacker.test', port: 443, component: 'agent' });

  const agentRecord = inFull(stdout, "The agent's record of the originated request");
  t.like(agentRecord, { component: 'agent', decision: 'allow', host: 'api.example.test', port: 80, route: 'gateway', replica: 'egress-gateway-0', identity: WORKLOAD_ID });
  const gatewayRecord = inFull(stdout, "The gateway's record of it");
  t.like(gatewayRecord, { component: 'gateway', decision: 'allow', route: 'gateway', replica: 'egress-gateway-0', identity: WORKLOAD_ID, connection_id: agentRecord.connection_id });
  const seen = inFull(stdout, 'What the HTTPS server saw of it');
  t.is(seen.served_by, 'https://api.example.test', 'plain HTTP from the application reached the server as HTTPS');
  t.regex(String(seen['x-forwarded-client-cert']), /^By=spiffe:\/\/cluster\.local\/ns\/egressd\/sa\/egress-gateway;Hash=[0-9a-f]{64};URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/checkout$/);
});

test('the demo refuses arguments it does not know', async (t) => {
  const child = spawn(process.execPath, ['bin/egressd.js', 'demo', '--bogus'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  t.is(await new Promise<number | null>((resolve) => child.on('close', resolve)), 2);
  t.regex(stderr, /egressd demo: .*--bogus.*EGRESSD_ERR_USAGE/);
});
