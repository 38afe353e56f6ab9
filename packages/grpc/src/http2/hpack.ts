/**
 * HPACK (RFC 7541) as a gRPC server needs it: a full decoder for what clients
 * send (indexed fields, literals, the dynamic table, Huffman strings), and an
 * encoder for our few response fields that only writes literals, so the peer's
 * decoder table is never touched and its size setting never matters to us.
 */
import { decodeHuffman } from './huffman.js';

/** RFC 7541 Appendix A, index 1..61. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''], ['cache-control', ''],
  ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''], ['content-length', ''],
  ['content-location', ''], ['content-range', ''], ['content-type', ''], ['cookie', ''], ['date', ''], ['etag', ''],
  ['expect', ''], ['expires', ''], ['from', ''], ['host', ''], ['if-match', ''], ['if-modified-since', ''],
  ['if-none-match', ''], ['if-range', ''], ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''],
  ['location', ''], ['max-forwards', ''], ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''],
  ['referer', ''], ['refresh', ''], ['retry-after', ''], ['server', ''], ['set-cookie', ''],
  ['strict-transport-security', ''], ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''],
  ['www-authenticate', ''],
];

/** Per-entry overhead the table size counts (RFC 7541 4.1). */
const ENTRY_OVERHEAD = 32;

export class HpackError extends Error {}

export type HeaderList = Array<[string, string]>;

export class HpackDecoder {
  /** Newest first, as dynamic indexes count. */
  private dynamic: Array<[string, string]> = [];
  private size = 0;
  private capacity: number;

  /** maxTableSize: what our SETTINGS_HEADER_TABLE_SIZE allows the peer (4096 unless we say otherwise). */
  constructor(private readonly maxTableSize = 4096) {
    this.capacity = maxTableSize;
  }

  /** The fields of one complete header block, in order. Throws HpackError on malformed input. */
  decode(block: Uint8Array): HeaderList {
    const out: HeaderList = [];
    let pos = 0;
    let fieldsSeen = false;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      for (let shift = 0; ; shift += 7) {
        if (pos >= block.length || shift > 28) throw new HpackError('bad integer');
        const b = block[pos++]!;
        value += (b & 0x7f) * 2 ** shift;
        if (!(b & 0x80)) return value;
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError('truncated string');
      const huffman = (block[pos]! & 0x80) !== 0;
      const length = int(7);
      if (pos + length > block.length) throw new HpackError('truncated string');
      const bytes = block.subarray(pos, pos + length);
      pos += length;
      if (!huffman) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
      const text = decodeHuffman(bytes);
      if (text === undefined) throw new HpackError('bad huffman string');
      return text;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const entry = this.entry(int(7));
        out.push([entry[0], entry[1]]);
      } else if (b & 0x40) {
        const index = int(6);
        const name = index ? this.entry(index)[0] : str();
        const field: [string, string] = [name, str()];
        out.push(field);
        this.insert(field);
      } else if (b & 0x20) {
        // A table size update may only open a block (RFC 7541 4.2).
        if (fieldsSeen) throw new HpackError('table size update after a field');
        const size = int(5);
        if (size > this.maxTableSize) throw new HpackError(`table size ${size} over the ${this.maxTableSize} allowed`);
        this.capacity = size;
        this.evict(0);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001): same shape, 4-bit prefix.
        const index = int(4);
        const name = index ? this.entry(index)[0] : str();
        out.push([name, str()]);
      }
      fieldsSeen = true;
    }
    return out;
  }

  private entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const entry = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!entry) throw new HpackError(`index ${index} is not in the table`);
    return entry;
  }

  private insert(field: [string, string]): void {
    const size = field[0].length + field[1].length + ENTRY_OVERHEAD;
    this.evict(size);
    // An entry larger than the whole table empties it and is not kept.
    if (size > this.capacity) return;
    this.dynamic.unshift(field);
    this.size += size;
  }

  private evict(room: number): void {
    while (this.dynamic.length && this.size + room > this.capacity) {
      const [name, value] = this.dynamic.pop()!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
});

function encodeInt(out: number[], value: number, prefixBits: number, firstByte: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(firstByte | value);
    return;
  }
  out.push(firstByte | max);
  value -= max;
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
}

/**
 * A header block of literals without indexing (names by static index when there
 * is one), strings raw. Names must be lower case; values are sent as latin1.
 */
export function encodeHeaders(fields: Iterable<readonly [string, string]>): Buffer {
  const out: number[] = [];
  const strings: Buffer[] = [];
  const flush = () => {
    if (out.length) strings.push(Buffer.from(out.splice(0)));
  };
  for (const [name, value] of fields) {
    if (name === ':status' && value === '200') {
      out.push(0x88);
      continue;
    }
    const index = STATIC_NAME_INDEX.get(name);
    encodeInt(out, index ?? 0, 4, 0x00);
    if (index === undefined) {
      encodeInt(out, name.length, 7, 0);
      flush();
      strings.push(Buffer.from(name, 'latin1'));
    }
    encodeInt(out, Buffer.byteLength(value, 'latin1'), 7, 0);
    flush();
    strings.push(Buffer.from(value, 'latin1'));
  }
  flush();
  return Buffer.concat(strings);
}
