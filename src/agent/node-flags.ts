/**
 * Node.js flags of the agent's process in production: the container command is
 * `node ${AGENT_NODE_FLAGS} dist/egressd.mjs agent ...` (the injected sidecar, the benchmarks,
 * docs/build.md). Each was measured against issue 5's budget (peak RSS under 60 MB at
 * 1,000 requests/s); the figures are in docs/build.md.
 *
 * - `--max-semi-space-size=1`: V8 grows each half of the young generation up to 16 MiB under
 *   load; at 1 MiB (more, cheaper scavenges of short-lived request garbage) the peak is
 *   4-6 MiB lower for no measurable CPU.
 * - `--no-sparkplug`: no baseline-compiled code (hot functions still go to TurboFan): -1 MiB.
 * - `--v8-pool-size=1`: one V8 helper thread (concurrent GC and compilation) instead of one per
 *   core: -1 MiB of stacks and allocator arenas; a sidecar has a core at most.
 * - `--initial-old-space-size=8` and `--heap-growing-percent=20`: V8 starts with an old-generation
 *   limit far above the agent's ~9 MiB live heap and grows it by up to 4x after each full GC, so
 *   under load the old space filled with promoted request garbage (+2.5 MiB) before any full GC;
 *   with a limit of 8 MiB, then 1.2x the live heap, full GCs of the small heap come sooner:
 *   -1.6 to -2 MiB, CPU per request unchanged.
 * - `--optimize-for-size`: V8's conservative heap growing. After each full GC the old generation
 *   may otherwise grow by at least 8 MiB past the live heap, whatever the growing factor says
 *   (MinimumAllocationLimitGrowingStep in V8's heap-controller.cc), and promoted request garbage
 *   filled it between full GCs over a long run; conservatively the step is 2 MiB. On the chain
 *   benchmark's full run: a peak of 60.0 and 59.9 MiB against 61.6 and 61.7, CPU per request
 *   within the run-to-run noise.
 *
 * Left out on purpose: `--no-opt` and `--lite-mode` save 4-9 MiB more but double the agent's
 * CPU per request on the gateway route; `--max-old-space-size` lowers no peak, it only turns
 * growth into a crash. Node 20's V8 is built without Maglev: `--maglev` changes nothing.
 */
export const AGENT_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=1',
  '--no-sparkplug',
  '--v8-pool-size=1',
  '--initial-old-space-size=8',
  '--heap-growing-percent=20',
  '--optimize-for-size',
];
