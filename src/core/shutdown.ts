/**
 * Runs `stop` once on SIGTERM or SIGINT, then exits with its result code.
 * Returns a function that removes the handlers (for tests and embedding).
 */
export function onShutdown(stop: (signal: NodeJS.Signals) => Promise<number | void>): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    stop(signal).then(
      (code) => process.exit(code ?? 0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
