/** HPACK decoding against RFC 7541's own examples, its error cases, and our encoder read back. */
import { describe, expect, it } from 'vitest';
import { encodeHeaders, HpackDecoder, HpackError } from '../src/http2/hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('HpackDecoder', () => {
  it('decodes the RFC 7541 C.4 requests (Huffman strings, dynamic table carried across blocks)', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    expect(d.decode(hex('8286 84be 5886 a8eb 1064 9cbf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    expect(d.decode(hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'))).toEqual([
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/index.html'],
      [':authority', 'www.example.com'],
      ['custom-key', 'custom-value'],
    ]);
  });

  it('decodes the RFC 7541 C.3 requests (raw strings)', () => {
    const d = new HpackDecoder();
    d.decode(hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'));
    expect(d.decode(hex('8286 84be 5808 6e6f 2d63 6163 6865'))).toContainEqual(['cache-control', 'no-cache']);
  });

  it('evicts the oldest entries when a size update shrinks the table', () => {
    const d = new HpackDecoder();
    d.decode(hex('4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')); // custom-key: custom-value, indexed as 62
    expect(d.decode(hex('be'))).toEqual([['custom-key', 'custom-value']]);
    expect(() => d.decode(hex('20 be'))).toThrow(HpackError); // size 0, then index 62 is gone
  });

  it('rejects what a peer may not send', () => {
    const cases = {
      'index 0': '80',
      'index past the tables': 'ff 0f',
      'table size over our setting': '3f e1 3f',
      'size update after a field': '82 20',
      'string longer than the block': '00 05 61',
      'EOS padding that is not all ones': '00 81 00',
      'integer that never ends': '0f ff ff ff ff ff ff',
    };
    for (const [what, bytes] of Object.entries(cases)) {
      expect(() => new HpackDecoder().decode(hex(bytes)), what).toThrow(HpackError);
    }
  });
});

describe('encodeHeaders', () => {
  it('writes literals any decoder reads back, long values and non-table names included', () => {
    const fields: Array<[string, string]> = [
      [':status', '200'],
      ['content-type', 'application/grpc+proto'],
      ['grpc-status', '13'],
      ['grpc-message', 'x'.repeat(300)],
      [':status', '415'],
    ];
    expect(new HpackDecoder().decode(encodeHeaders(fields))).toEqual(fields);
  });
});
