import type { Socket } from 'node:net';
import { errorMessage } from '../core/errors.ts';
import { formatHostPort } from '../core/net.ts';
import { unmapped } from './connection-record.ts';
import { dnsNameOf, namesFromDns } from './dns-names.ts';
import { isOwnListener } from './loop-guard.ts';
import { decideSniffed, forward, openRecord, planRoute, refuseSniffed, whenClosed, type Pipeline } from './pipeline.ts';
import { peekWindow } from './peek-window.ts';
import { refuseTcp } from './refuse.ts';
import { sniff } from './sniff.ts';

/**
 * The transparent (outbound) listener's connection handler: iptables sent
 * us a connection meant for somebody else; find out for whom, look at what
 * the client says, decide, and either connect it or refuse it.
 */

export interface Destination {
  address: string;
  port: number;
}

/**
 * Where a redirected connection was going. In production it reads
 * SO_ORIGINAL_DST (src/core/original-dst.ts); it is a parameter so that the
 * rest of the pipeline can run on loopback without iptables.
 */
export type OriginalDestination = (socket: Socket) => Destination;

export async function handleOutbound(pipeline: Pipeline, originalDestination: OriginalDestination, socket: Socket): Promise<void> {
  const record = openRecord(pipeline, 'outbound', socket);
  try {
    let dst: Destination;
    try {
      const found = originalDestination(socket);
      dst = { address: unmapped(found.address), port: found.port };
    } catch (err) {
      record.refused('no_original_destination', errorMessage(err));
      refuseTcp(socket);
      return;
    }
    record.destination(dst.address, dst.port);
    if (isOwnListener(dst.address, dst.port, pipeline.ownPorts())) {
      record.refused('loop', `${formatHostPort(dst.address, dst.port)} is the agent itself`);
      refuseTcp(socket);
      return;
    }

    const peekTimeoutMs = peekWindow(pipeline.policy(), dst, dnsNameOf(pipeline, dst.address), pipeline);
    const sniffed = await sniff(socket, { peekTimeoutMs, sniffTimeoutMs: pipeline.sniffTimeoutMs });
    const named = namesFromDns(pipeline, dst, sniffed);
    const verdict = decideSniffed(pipeline, record, sniffed, { names: named.names, port: dst.port, address: dst.address, protocol: 'TCP' });
    if (!verdict.allow) {
      await refuseSniffed(pipeline, record, socket, sniffed, verdict, dst.port);
      return;
    }
    // A VIP is routed like a name given to the explicit proxy: nothing was dialled that could be used.
    const routed = await planRoute(pipeline, record, verdict, { host: verdict.host, port: dst.port }, named.vip ? undefined : dst);
    if (!routed.verdict.allow) {
      await refuseSniffed(pipeline, record, socket, sniffed, routed.verdict, dst.port);
      return;
    }
    await forward(pipeline, record, socket, sniffed, routed.target);
  } catch (err) {
    // A bug, not a refusal: log it, cut the connection, still write the record.
    pipeline.logger.error({ err }, 'outbound connection failed unexpectedly');
    record.error(errorMessage(err));
    refuseTcp(socket);
  } finally {
    await whenClosed(socket);
    record.finish();
  }
}
