import { readFileSync } from 'node:fs';

/** Packets recorded from dig, Node's resolver and dnsmasq (see fixtures/README.md), by label. */
const table = JSON.parse(readFileSync(new URL('./fixtures/packets.json', import.meta.url), 'utf8')) as Record<string, string>;

export function packet(label: string): Buffer {
  const hex = table[label];
  if (hex === undefined) throw new Error(`no recorded packet ${label}`);
  return Buffer.from(hex, 'hex');
}

export function labels(prefix: string): string[] {
  return Object.keys(table).filter((k) => k.startsWith(prefix));
}
