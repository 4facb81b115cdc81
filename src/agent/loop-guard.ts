import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { unmapped } from './connection-record.ts';

/**
 * A connection addressed to one of the agent's own listeners would come
 * straight back (through iptables, or through the proxy it came from) and
 * loop until sockets run out; the pipeline refuses it instead.
 */
export function isOwnListener(address: string, port: number, ownPorts: ReadonlySet<number>): boolean {
  if (!ownPorts.has(port)) return false;
  return isLocalAddress(address);
}

export function isLocalAddress(address: string): boolean {
  const a = unmapped(address).toLowerCase();
  if (isIP(a) === 4 && (a.startsWith('127.') || a === '0.0.0.0')) return true;
  if (a === '::1' || a === '::') return true;
  // Interfaces are read each time: pod addresses can appear after the agent starts.
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address.toLowerCase() === a));
}
