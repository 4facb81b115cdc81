/**
 * DNS over TCP: every message is preceded by its length in two bytes
 * (RFC 1035 4.2.2). Collects chunks and hands out whole messages; a peer
 * may pipeline several queries in one write or split one over many.
 */
export class TcpFramer {
  #pending: Buffer = Buffer.alloc(0);

  /** Adds a chunk; returns the messages it completed, in order. */
  push(chunk: Buffer): Buffer[] {
    const data = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const messages: Buffer[] = [];
    let offset = 0;
    while (data.length - offset >= 2) {
      const length = data.readUInt16BE(offset);
      if (data.length - offset - 2 < length) break;
      messages.push(data.subarray(offset + 2, offset + 2 + length));
      offset += 2 + length;
    }
    this.#pending = offset === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(offset));
    return messages;
  }

  /** Bytes of a message not yet complete. */
  get buffered(): number {
    return this.#pending.length;
  }
}

/** A message with its two-byte length in front. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(message.length + 2);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}
