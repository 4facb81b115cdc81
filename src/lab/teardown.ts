import { errorMessage } from '../core/errors.ts';
import { onShutdown } from '../core/shutdown.ts';
import type { TeardownHost } from './netns.ts';

/**
 * The TeardownHost of a run outside ava (the transparent demo, a benchmark):
 * cleanups run last-registered first, like ava's `t.teardown`, each once,
 * and one that fails does not keep the others from running.
 */
export class TeardownStack implements TeardownHost {
  readonly #fns: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  /** Runs every registered cleanup; returns the messages of those that failed. */
  async run(): Promise<string[]> {
    const failures: string[] = [];
    for (let fn = this.#fns.pop(); fn !== undefined; fn = this.#fns.pop()) {
      try {
        await fn();
      } catch (err) {
        failures.push(errorMessage(err));
      }
    }
    return failures;
  }
}

/** Exit codes of a run cut short by a signal, as shells report them (128 + signal number). */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs `body` with a fresh TeardownStack and cleans up whatever it registered
 * when it returns, when it throws, and on SIGINT or SIGTERM (then exits
 * 130/143 once cleanup is done), so no namespace outlives the run.
 * Cleanup failures are reported to `warn`, never hidden.
 */
export async function withTeardown<T>(body: (td: TeardownStack) => Promise<T>, warn: (message: string) => void): Promise<T> {
  const stack = new TeardownStack();
  // One cleanup, whoever asks first: a signal during the final cleanup waits for it instead of racing it.
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= stack.run().then((failures) => {
      for (const failure of failures) warn(`cleanup: ${failure}`);
    }));
  const off = onShutdown(async (signal) => {
    warn(`${signal}: cleaning up`);
    await cleanup();
    return SIGNAL_EXIT[signal] ?? 1;
  });
  try {
    return await body(stack);
  } finally {
    await cleanup();
    off();
  }
}
