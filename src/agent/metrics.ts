import { Counter, Gauge, type Registry } from 'prom-client';

/** The agent's metrics, registered on the registry it is given. Names are documented in docs/agent.md. */
export interface AgentMetrics {
  connections: Counter<'listener' | 'decision' | 'reason'>;
  active: Gauge<'listener'>;
  bytesSent: Counter<'listener'>;
  bytesReceived: Counter<'listener'>;
  malformedClientHellos: Counter<'listener'>;
  configReloads: Counter<never>;
  configReloadFailures: Counter<never>;
  /** Egress gateway replicas that failed (connect, handshake, session) and were skipped for a backoff. */
  gatewayReplicaFailures: Counter<'replica'>;
}

export function createAgentMetrics(registry: Registry): AgentMetrics {
  const registers = [registry];
  return {
    connections: new Counter({
      name: 'egressd_agent_connections_total',
      help: 'Connections handled, by listener, decision (allow, deny) and reason',
      labelNames: ['listener', 'decision', 'reason'],
      registers,
    }),
    active: new Gauge({ name: 'egressd_agent_active_connections', help: 'Connections open now', labelNames: ['listener'], registers }),
    bytesSent: new Counter({ name: 'egressd_agent_bytes_sent_total', help: 'Bytes written to destinations', labelNames: ['listener'], registers }),
    bytesReceived: new Counter({ name: 'egressd_agent_bytes_received_total', help: 'Bytes read from destinations', labelNames: ['listener'], registers }),
    malformedClientHellos: new Counter({
      name: 'egressd_agent_malformed_client_hellos_total',
      help: 'Connections refused because they started a TLS handshake with an invalid ClientHello',
      labelNames: ['listener'],
      registers,
    }),
    configReloads: new Counter({ name: 'egressd_agent_config_reloads_total', help: 'Configurations loaded and applied', registers }),
    configReloadFailures: new Counter({
      name: 'egressd_agent_config_reload_failures_total',
      help: 'Configuration loads rejected (the last good one stays in force)',
      registers,
    }),
    gatewayReplicaFailures: new Counter({
      name: 'egressd_agent_gateway_replica_failures_total',
      help: 'Egress gateway replicas taken out of rotation after a failure, by replica address',
      labelNames: ['replica'],
      registers,
    }),
  };
}
