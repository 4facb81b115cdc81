import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One prom-client registry per component instance, never the global one, so
 * that several agents (or an agent and a gateway) can live in one process,
 * as they do in tests.
 */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Body and content type of a `/stats/prometheus` answer. */
export async function renderMetrics(registry: Registry): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}
