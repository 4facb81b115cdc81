/**
 * The lab: network namespaces wired like a pod and the internet behind it, for
 * the transparent demo (`egressd demo --transparent`), the end-to-end tests
 * and the benchmarks. Needs root and iproute2 (`ip netns`), `setpriv`, `ss`.
 *
 * - netns.ts: canRunNetns, uniqueName, createNetns, deleteNetns, connectVeth, addAddress, addDefaultRoute,
 *   execInNetns, mustExecInNetns, host, netnsArgv, spawnInNetns, spawnNodeInNetns, waitForListen, pollUntil, REPO_ROOT, TSX_ARGS
 * - topology.ts: createPodInternet, addServerAddress, POD_INTERNET_ADDRESSES
 * - teardown.ts: TeardownStack, withTeardown (cleanup on return, throw, SIGINT, SIGTERM)
 */
export * from './netns.ts';
export * from './topology.ts';
export * from './teardown.ts';
