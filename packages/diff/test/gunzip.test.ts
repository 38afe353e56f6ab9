/**
 * gzip through ISA-L (libisal2, which setup installs): byte for byte what zlib
 * decodes, however the input is cut, and the same errors for bad streams.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { Code } from '@boxd/api';
import { cleanupTempDirs, runOk, tempDir } from '@boxd/test-utils';
import { gunzipStream, isalGunzip } from '../src/apply/isal-gunzip.js';

const isal = isalGunzip();

afterAll(() => cleanupTempDirs());

async function* pieces(bytes: Buffer, size: number) {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function gunzip(bytes: Buffer, size = 1 << 20): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of gunzipStream(isal!, pieces(bytes, size))) out.push(chunk);
  return Buffer.concat(out);
}

/** Text-like runs and random bytes: both Huffman-coded and stored blocks. */
function mixed(length: number): Buffer {
  const words = Buffer.from('layer snapshot overlay digest whiteout ');
  const out = Buffer.alloc(length);
  for (let at = 0; at < length; at += 100_000) {
    const end = Math.min(length, at + 100_000);
    if ((at / 100_000) % 2) randomBytes(end - at).copy(out, at);
    else for (let i = at; i < end; i++) out[i] = words[i % words.length]!;
  }
  return out;
}

describe('gzip through ISA-L', () => {
  it('loads libisal.so.2 here (setup installs libisal2)', () => {
    expect(isal).toBeDefined();
  });

  it('decodes what zlib decodes, whatever the input pieces', async () => {
    const plain = mixed(1_500_000);
    for (const level of [1, 6, 9]) {
      const gz = gzipSync(plain, { level });
      for (const size of [1, 13, 4096, 65_537, gz.length]) {
        if (size === 1 && level !== 6) continue; // one byte at a time is slow; once is enough
        expect((await gunzip(gz, size)).equals(plain), `level ${level}, pieces of ${size}`).toBe(true);
      }
    }
  });

  it('decodes a file gzip(1) wrote, header fields and all', async () => {
    const plain = mixed(400_000);
    const file = join(await tempDir('bx-gz-'), 'layer.tar');
    await writeFile(file, plain);
    const { stdoutBytes } = await runOk('gzip', ['-c', '-9', file]);
    expect(stdoutBytes[3]! & 0x08).toBe(0x08); // FNAME set
    expect((await gunzip(stdoutBytes, 1000)).equals(plain)).toBe(true);
  });

  it('decodes members one after another, split anywhere', async () => {
    const parts = [mixed(200_000), Buffer.alloc(0), randomBytes(70_000), mixed(5)];
    const gz = Buffer.concat(parts.map((p) => gzipSync(p)));
    for (const size of [7, 999, 1 << 20]) expect((await gunzip(gz, size)).equals(Buffer.concat(parts))).toBe(true);
  });

  it('hands out chunks that later chunks do not overwrite', async () => {
    const plain = randomBytes(3 << 20);
    const kept: Buffer[] = [];
    for await (const chunk of gunzipStream(isal!, pieces(gzipSync(plain), 100_000))) kept.push(chunk);
    expect(kept.length).toBeGreaterThan(4);
    expect(Buffer.concat(kept).equals(plain)).toBe(true);
  });

  it('ignores zero padding after the last member, as zlib does', async () => {
    const plain = mixed(50_000);
    const gz = Buffer.concat([gzipSync(plain), Buffer.alloc(1024)]);
    expect(gunzipSync(gz).equals(plain)).toBe(true);
    expect((await gunzip(gz, 333)).equals(plain)).toBe(true);
  });

  it('fails bad streams with INVALID_ARGUMENT, as zlib fails them', async () => {
    const gz = gzipSync(mixed(300_000));
    const crc = Buffer.from(gz);
    crc[crc.length - 6]! ^= 0xff;
    const length = Buffer.from(gz);
    length[length.length - 2]! ^= 0x01;
    const body = Buffer.from(gz);
    for (let i = 100; i < 140; i++) body[i] = 0xff;
    const cases: [string, Buffer, RegExp][] = [
      ['empty', Buffer.alloc(0), /unexpected end of file/],
      ['cut in the data', gz.subarray(0, gz.length >> 1), /unexpected end of file/],
      ['cut in the trailer', gz.subarray(0, gz.length - 3), /unexpected end of file/],
      ['not gzip', Buffer.from('just some text, no gzip header at all'), /incorrect header check/],
      ['garbage after the member', Buffer.concat([gz, Buffer.from('garbage')]), /incorrect header check/],
      ['bad CRC', crc, /incorrect data check/],
      ['bad length', length, /gzip: /],
      ['bad data', body, /gzip: /],
    ];
    for (const [what, bytes, message] of cases) {
      expect(() => gunzipSync(bytes), `zlib, ${what}`).toThrow();
      await expect(gunzip(bytes, 4096), what).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT, message });
    }
  });

  it('passes an error of its input through unchanged', async () => {
    const gz = gzipSync(mixed(300_000));
    async function* failing() {
      yield gz.subarray(0, 1000);
      throw new Error('disk went away');
    }
    await expect(
      (async () => {
        for await (const _ of gunzipStream(isal!, failing()));
      })(),
    ).rejects.toThrow(/^disk went away$/);
  });
});
