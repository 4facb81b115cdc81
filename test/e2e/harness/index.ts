/**
 * Network-namespace harness for egressd's end-to-end tests. Needs root and
 * iproute2 (`ip netns`), `setpriv`, `ss`; everything it creates is removed at
 * `t.teardown`, even when the test fails. Nothing touches the host network:
 * addresses (10.x, 192.168.x, fd..) exist only inside the test's namespaces.
 *
 * Skipping where it cannot run (ava decides skips at declaration time, so use
 * top-level await):
 *
 *   const e2e = await netnsTests('abc-', 'abc e2e (skipped)');   // your prefix; test.serial or test.skip
 *
 * Typical test:
 *
 *   e2e('app traffic is redirected', async (t) => {
 *     const topo = await createPodInternet(t, 'abc-');      // pod <-> internet, 10.77.0.2 -> 10.77.0.1
 *     const pki = await createTestPki(t, ['api.example.test', topo.internetIp]);
 *     await startServers(t, topo.internet, { name: 'internet', certFile: pki.certFile, keyFile: pki.keyFile,
 *       servers: [{ kind: 'https', host: '0.0.0.0', port: 443 }, { kind: 'http', host: '0.0.0.0', port: 80 }] });
 *     await mustExecInNetns(topo.pod, process.execPath, ['bin/egressd.js', 'init']);
 *     const agent = spawnInNetns(t, topo.pod, process.execPath, ['bin/egressd.js', 'agent', ...], { uid: 1337 });
 *     await waitForListen(topo.pod, 15001);
 *     const r = await execInNetns(topo.pod, 'curl', ['-sS', '--cacert', pki.caFile, 'https://api.example.test/',
 *       '--resolve', `api.example.test:443:${topo.internetIp}`], { uid: 1000 });
 *   });
 *
 * Modules:
 * - src/lab/netns.ts (the lab, shared with the transparent demo and the benchmarks): canRunNetns, uniqueName,
 *   createNetns, deleteNetns, connectVeth, addAddress, addDefaultRoute, execInNetns, mustExecInNetns, host,
 *   netnsArgv, spawnInNetns, spawnNodeInNetns, waitForListen, pollUntil, REPO_ROOT, TSX_ARGS
 * - src/lab/topology.ts: createPodInternet, addServerAddress, POD_INTERNET_ADDRESSES
 * - servers.ts: startServers (http, https, tcp reporting SO_ORIGINAL_DST, udp echo) in any namespace
 * - probe.ts: probe (one TCP/UDP exchange as any UID, errors as data), answer
 * - certs.ts: createTestPki (CA + server cert files made at test time)
 * - netns-tests.ts: netnsTests (serial where namespaces can be made, else skipped with the reason)
 */
export * from '../../../src/lab/netns.ts';
export * from '../../../src/lab/topology.ts';
export * from './servers.ts';
export * from './probe.ts';
export * from './certs.ts';
export * from './netns-tests.ts';
