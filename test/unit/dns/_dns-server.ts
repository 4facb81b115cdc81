/**
 * A small authoritative DNS server over real UDP and TCP sockets, built on
 * dns-packet: the upstream the proxy tests forward to (and the e2e test runs
 * in its "internet" namespace). It answers from a zone given as records,
 * counts what it is asked and how, truncates over UDP what does not fit the
 * asker's size, and can stay silent for chosen names.
 */
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';

export interface Zone {
  /** Records by owner name; a query gets the records of its type, or a CNAME if the name has one. */
  records: Answer[];
  /** Names answered NXDOMAIN with this SOA in the authority section (negative caching). */
  soa?: Answer;
  /** Names never answered (timeouts). */
  silent?: string[];
}

export interface AskedQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export interface DnsServer {
  host: string;
  port: number;
  asked: AskedQuery[];
  /** How many times `name` (any case) was asked, optionally by transport. */
  count(name: string, transport?: 'udp' | 'tcp'): number;
  close(): Promise<void>;
}

export function answerFor(zone: Zone, query: DecodedPacket): Buffer {
  const question = query.questions![0]!;
  const name = question.name.toLowerCase();
  const own = zone.records.filter((r) => r.name.toLowerCase() === name);
  const answers = own.filter((r) => r.type === question.type);
  const cname = own.filter((r) => r.type === 'CNAME');
  const opt = query.additionals?.find((r) => r.type === 'OPT');
  const response = {
    id: query.id,
    type: 'response' as const,
    flags: (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED | dnsPacket.AUTHORITATIVE_ANSWER | (own.length === 0 ? 3 : 0),
    questions: [question],
    answers: answers.length > 0 ? answers : cname,
    authorities: own.length === 0 && zone.soa !== undefined ? [zone.soa] : [],
    additionals: opt === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as Answer],
  };
  return dnsPacket.encode(response);
}

export async function startDnsServer(zone: Zone, host = '127.0.0.1', port = 0): Promise<DnsServer> {
  const asked: AskedQuery[] = [];
  const silent = new Set((zone.silent ?? []).map((n) => n.toLowerCase()));
  const handle = (bytes: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(bytes);
    } catch {
      return undefined;
    }
    const question = query.questions?.[0];
    if (question === undefined) return undefined;
    asked.push({ name: question.name.toLowerCase(), type: question.type, transport });
    if (silent.has(question.name.toLowerCase())) return undefined;
    const answer = answerFor(zone, query);
    const opt = query.additionals?.find((r) => r.type === 'OPT') as { udpPayloadSize?: number } | undefined;
    const limit = opt === undefined ? 512 : Math.max(512, opt.udpPayloadSize ?? 512);
    if (transport === 'udp' && answer.length > limit) {
      return dnsPacket.encode({ id: query.id, type: 'response', flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.AUTHORITATIVE_ANSWER, questions: [question] });
    }
    return answer;
  };
  const sockets = new Set<net.Socket>();
  const onTcp = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const reply = handle(pending.subarray(2, 2 + pending.readUInt16BE(0)), 'tcp');
        pending = pending.subarray(2 + pending.readUInt16BE(0));
        if (reply) socket.write(Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]));
      }
    });
  };
  // With port 0 the port UDP got can be in use for TCP (an outgoing connection's): take another.
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    udp.on('message', (msg, rinfo) => {
      const reply = handle(msg, 'udp');
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => resolve());
    });
    const tcp = net.createServer(onTcp);
    const listening = await new Promise<boolean>((resolve, reject) => {
      tcp.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' && port === 0 && attempt < 5 ? resolve(false) : reject(err)));
      tcp.listen(udp.address().port, host, () => resolve(true));
    });
    if (!listening) {
      udp.close();
      continue;
    }
    return serverHandle(host, udp, tcp, sockets, asked);
  }
}

function serverHandle(host: string, udp: dgram.Socket, tcp: net.Server, sockets: Set<net.Socket>, asked: AskedQuery[]): DnsServer {
  let closing: Promise<void> | undefined;
  return {
    host,
    port: (tcp.address() as AddressInfo).port,
    asked,
    count: (name, transport) => asked.filter((q) => q.name === name.toLowerCase() && (transport === undefined || q.transport === transport)).length,
    close: () =>
      (closing ??= (async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([new Promise<void>((resolve) => udp.close(() => resolve())), new Promise<void>((resolve) => tcp.close(() => resolve()))]);
      })()),
  };
}
