import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerPki } from '../../../src/pki/server-pki.ts';
import type { TeardownHost } from '../../../src/lab/netns.ts';

/**
 * A throwaway CA and one server certificate (src/pki/server-pki.ts), made at
 * test time so no key is ever committed, written to files in a temp dir
 * removed at teardown; `caFile` is what `curl --cacert` or Node's `ca` wants.
 */
export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** CA plus a server certificate for `names` (DNS names and IP addresses both go into the SAN). */
export async function createTestPki(t: TeardownHost, names: readonly string[]): Promise<TestPki> {
  const { caPem, certPem, keyPem } = await createServerPki(names, { caName: 'egressd e2e test CA' });
  const dir = await mkdtemp(join(tmpdir(), 'egressd-e2e-pki-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Readable by every UID: clients and servers may run as non-root test users; the key is throwaway.
  await chmod(dir, 0o755);
  const files = { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server-key.pem') };
  await writeFile(files.caFile, caPem);
  await writeFile(files.certFile, certPem);
  await writeFile(files.keyFile, keyPem);
  return { dir, ...files, caPem, certPem, keyPem };
}
