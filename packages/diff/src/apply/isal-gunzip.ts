/**
 * gzip decoded by ISA-L's igzip (libisal.so.2, Debian's libisal2) through koffi: on this
 * project's bench layers it inflates ~3x faster than zlib (a 134 MB layer: ~70 ms against
 * ~200 ms), and inflating is the largest single cost of unpacking a layer. It streams as
 * zlib does: ISA-L keeps the lookback window in its own state, so a chunk handed out is
 * never written again and the caller may keep it.
 *
 * ISA-L's inflate state is a plain struct the caller allocates; its size and the offsets of
 * the fields used here are those of igzip_lib.h for soname 2. A library that does not
 * decode a known stream exactly as zlib does is not used (`isalGunzip()` answers
 * undefined), and the caller falls back to zlib.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { InternalError, InvalidArgumentError } from '@boxd/api';
import type { ByteStream } from '../streams.js';

type Koffi = typeof import('koffi');

interface Isal {
  koffi: Koffi;
  init(state: Buffer): void;
  inflate(state: Buffer): number;
}

// struct inflate_state (isa-l/igzip_lib.h, libisal.so.2).
const STATE_SIZE = 87368;
const NEXT_OUT = 0;
const AVAIL_OUT = 8;
const NEXT_IN = 16;
const AVAIL_IN = 32;
const BLOCK_STATE = 21160;
const CRC_FLAG = 21172;
/** crc_flag: parse the gzip header, verify the CRC and length trailer. */
const ISAL_GZIP = 1;
/** block_state: the member is decoded, trailer checked, and all its output handed out. */
const ISAL_BLOCK_FINISH = 5;

const OUT_CHUNK = 256 << 10;

const ERRORS: Record<number, string> = {
  [-1]: 'invalid deflate block',
  [-2]: 'invalid Huffman symbol',
  [-3]: 'invalid distance too far back',
  [-4]: 'incorrect header check',
  [-5]: 'unknown compression method',
  [-6]: 'incorrect data check',
  6: 'preset dictionary needed',
};

/** One gzip stream (of one or more members) being decoded. */
class GzipInflater {
  private readonly state = Buffer.alloc(STATE_SIZE);
  private finished = false;
  /** Output goes into a slab after what was handed out of it, so no chunk handed out is written again. */
  private out = Buffer.allocUnsafe(OUT_CHUNK);
  private outAt = 0;
  /** After the last member came a zero byte: what follows is padding, ignored as zlib's gunzip does. */
  private padded = false;

  constructor(private readonly isal: Isal) {
    this.beginMember();
  }

  /** The output `chunk` completes; the input is read in place, so `chunk` must not change meanwhile. */
  *push(chunk: Buffer): Generator<Buffer> {
    let input = chunk;
    while (input.length > 0 && !this.padded) {
      if (this.finished) {
        if (input[0] === 0) {
          this.padded = true;
          return;
        }
        // Another member follows, as gzip allows.
        this.beginMember();
      }
      const produced = yield* this.inflate(input);
      const left = this.state.readUInt32LE(AVAIL_IN);
      // A pass with input and room takes input, makes output or ends the member; a library
      // that does none of these is not the one these offsets describe, and would spin here.
      if (left > input.length || (left === input.length && produced === 0 && !this.finished)) throw new InternalError('gzip: ISA-L made no progress');
      input = input.subarray(input.length - left);
    }
  }

  /** The input ended: anything but a complete last member is an error. */
  end(): void {
    if (!this.finished) throw new InvalidArgumentError('gzip: unexpected end of file');
  }

  private beginMember(): void {
    this.isal.init(this.state);
    this.state.writeUInt32LE(ISAL_GZIP, CRC_FLAG);
    this.finished = false;
  }

  /** Inflates what `input` holds; answers how many bytes came out. */
  private *inflate(input: Buffer): Generator<Buffer, number> {
    const { state, isal } = this;
    state.writeBigUInt64LE(isal.koffi.address(input), NEXT_IN);
    state.writeUInt32LE(input.length, AVAIL_IN);
    let total = 0;
    for (;;) {
      if (this.outAt === OUT_CHUNK) {
        this.out = Buffer.allocUnsafe(OUT_CHUNK);
        this.outAt = 0;
      }
      const room = OUT_CHUNK - this.outAt;
      state.writeBigUInt64LE(isal.koffi.address(this.out) + BigInt(this.outAt), NEXT_OUT);
      state.writeUInt32LE(room, AVAIL_OUT);
      const rc = isal.inflate(state);
      if (rc !== 0) throw new InvalidArgumentError(`gzip: ${ERRORS[rc] ?? `ISA-L error ${rc}`}`);
      const produced = room - state.readUInt32LE(AVAIL_OUT);
      if (produced > 0) yield this.out.subarray(this.outAt, this.outAt + produced);
      this.outAt += produced;
      total += produced;
      if (state.readUInt32LE(BLOCK_STATE) === ISAL_BLOCK_FINISH) {
        this.finished = true;
        return total;
      }
      // Output room left over means the input is used up: the rest comes with the next chunk.
      if (produced < room) return total;
    }
  }
}

/** Decodes a gzip stream; errors of `source` pass through as they are, bad gzip is INVALID_ARGUMENT. */
export async function* gunzipStream(isal: Isal, source: ByteStream): ByteStream {
  const inflater = new GzipInflater(isal);
  for await (const chunk of source) yield* inflater.push(chunk);
  inflater.end();
}

let loaded: Isal | null | undefined;

/** ISA-L, when libisal.so.2 loads here and decodes like zlib; undefined otherwise. */
export function isalGunzip(): Isal | undefined {
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

function load(): Isal | null {
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const lib = koffi.load('libisal.so.2');
    const isal: Isal = {
      koffi,
      init: lib.func('void isal_inflate_init(void *state)') as unknown as Isal['init'],
      inflate: lib.func('int isal_inflate(void *state)') as unknown as Isal['inflate'],
    };
    return decodesLikeZlib(isal) ? isal : null;
  } catch {
    return null;
  }
}

/** Two members of text and random bytes, fed in odd pieces: wrong struct offsets could not decode them. */
function decodesLikeZlib(isal: Isal): boolean {
  const plain = Buffer.concat([Buffer.alloc(80_000, 'overlay snapshot '), randomBytes(80_000), Buffer.alloc(80_000, 'layer ')]);
  const gz = Buffer.concat([gzipSync(plain.subarray(0, 100_000), { level: 1 }), gzipSync(plain.subarray(100_000), { level: 1 })]);
  const inflater = new GzipInflater(isal);
  const out: Buffer[] = [];
  for (let at = 0; at < gz.length; at += 16_411) out.push(...inflater.push(gz.subarray(at, at + 16_411)));
  inflater.end();
  return Buffer.concat(out).equals(plain);
}
