import { describe, expect, it } from 'vitest';
import { FrameReader, MAX_DATA_LENGTH, encodeFrame } from '../src/frame.js';
import { frameHex } from './fixtures.js';

function collect() {
  const events: string[] = [];
  const reader = new FrameReader({
    frame: (id, type, flags, data) => events.push(`frame ${id} ${type} ${flags} ${data.toString('hex')}`),
    oversize: (id, type, _flags, length) => events.push(`oversize ${id} ${type} ${length}`),
    corrupt: (reason) => events.push(`corrupt ${reason}`),
  });
  return { events, reader };
}

describe('frame header', () => {
  it('encodes big-endian length, stream id, type, flags', () => {
    expect(encodeFrame(0x01020304, 3, 5, Buffer.from('abcd', 'hex')).toString('hex')).toBe('00000002010203040305abcd');
    expect(encodeFrame(7, 2, 0).toString('hex')).toBe('00000000000000070200');
  });
});

describe('FrameReader', () => {
  const stream = Buffer.concat([
    frameHex(1, 1, 0, Buffer.from('0a0b0c', 'hex')),
    frameHex(3, 3, 4),
    frameHex(5, 2, 0, Buffer.alloc(300, 7)),
  ]);
  const expected = [
    'frame 1 1 0 0a0b0c',
    'frame 3 3 4 ',
    `frame 5 2 0 ${Buffer.alloc(300, 7).toString('hex')}`,
  ];

  it('parses frames delivered one byte at a time', () => {
    const { events, reader } = collect();
    for (const b of stream) reader.push(Buffer.from([b]));
    expect(events).toEqual(expected);
    expect(reader.partial).toBe(false);
  });

  it('parses frames from arbitrary chunk boundaries', () => {
    for (const size of [2, 3, 9, 10, 11, 13, 64, 299, stream.length]) {
      const { events, reader } = collect();
      for (let i = 0; i < stream.length; i += size) reader.push(stream.subarray(i, i + size));
      expect(events, `chunk size ${size}`).toEqual(expected);
    }
  });

  it('reports a partial frame left at end of stream', () => {
    const { events, reader } = collect();
    reader.push(stream.subarray(0, 12));
    expect(events).toEqual([]);
    expect(reader.partial).toBe(true);
  });

  it('skips an oversize frame without buffering it, then continues', () => {
    const { events, reader } = collect();
    const length = MAX_DATA_LENGTH + 1;
    const head = Buffer.alloc(10);
    head.writeUInt32BE(length, 0);
    head.writeUInt32BE(9, 4);
    head[8] = 1;
    reader.push(head);
    const chunk = Buffer.alloc(64 * 1024);
    let left = length;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      reader.push(chunk.subarray(0, n));
      left -= n;
      // Nothing of the skipped data is retained.
      expect((reader as unknown as { buffered: number }).buffered).toBe(0);
    }
    expect(events).toEqual([`oversize 9 1 ${length}`]);
    reader.push(frameHex(11, 1, 0, Buffer.from('ff', 'hex')));
    expect(events).toEqual([`oversize 9 1 ${length}`, 'frame 11 1 0 ff']);
  });

  it('skips an oversize frame whose tail shares a chunk with the next frame', () => {
    const { events, reader } = collect();
    const length = MAX_DATA_LENGTH + 5;
    const head = Buffer.alloc(10);
    head.writeUInt32BE(length, 0);
    head.writeUInt32BE(1, 4);
    head[8] = 3;
    reader.push(Buffer.concat([head, Buffer.alloc(100)]));
    reader.push(Buffer.concat([Buffer.alloc(length - 100), frameHex(3, 1, 0)]));
    expect(events).toEqual([`oversize 1 3 ${length}`, 'frame 3 1 0 ']);
  });

  it('treats a header with the reserved byte set as corrupt and stops', () => {
    const { events, reader } = collect();
    reader.push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    reader.push(frameHex(1, 1, 0));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^corrupt frame header with reserved byte set/);
  });

  it('holds frames while paused and delivers them on resume', () => {
    const { events, reader } = collect();
    reader.pause();
    reader.push(stream);
    expect(events).toEqual([]);
    reader.resume();
    expect(events).toEqual(expected);
  });
});
