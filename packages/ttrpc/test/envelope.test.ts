import { describe, expect, it } from 'vitest';
import Long from 'long';
import { taskV2, NAMESPACE_HEADER_TTRPC } from '@boxd/api';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, metadataFromWire } from '../src/envelope.js';
import { requestFrame, responseFrame, stampStreamId, statusFrame } from '../src/wire.js';
import { wireMetadata } from '../src/metadata.js';

const WORKED_EXAMPLE =
  '000000550000000101000a17636f6e7461696e6572642e7461736b2e76322e5461736b1207436f6e6e6563741a040a0274322080e497d0122a250a1a636f6e7461696e6572642d6e616d6573706163652d7474727063120764656661756c74';

describe('envelope encoding', () => {
  it('encodes the ttrpc.md worked example byte for byte', () => {
    const frame = requestFrame(
      {
        service: 'containerd.task.v2.Task',
        method: 'Connect',
        payload: taskV2.ConnectRequest.encode({ id: 't2' }),
        timeoutNano: Long.fromNumber(5_000_000_000),
        metadata: wireMetadata({ namespace: 'default' }),
      },
      0,
    );
    stampStreamId(frame, 1);
    expect(frame.toString('hex')).toBe(WORKED_EXAMPLE);
  });

  it('decodes the worked example back, 64-bit timeout exact', () => {
    const req = decodeRequest(Buffer.from(WORKED_EXAMPLE, 'hex').subarray(10));
    expect(req.service).toBe('containerd.task.v2.Task');
    expect(req.method).toBe('Connect');
    expect(taskV2.ConnectRequest.decode(req.payload).id).toBe('t2');
    expect(req.timeoutNano.toString()).toBe('5000000000');
    expect(req.metadata).toEqual([{ key: NAMESPACE_HEADER_TTRPC, value: 'default' }]);
  });

  it('keeps timeout_nano exact beyond 2^53', () => {
    const big = Long.fromString('9223372036854775807');
    const req = decodeRequest(encodeRequest({ service: 's', method: 'm', timeoutNano: big }));
    expect(req.timeoutNano.toString()).toBe('9223372036854775807');
  });

  it('decodes the shim Connect reply from ttrpc.md section 11', () => {
    const bytes = Buffer.from('0000000a00000001020012080898960110ad9601', 'hex');
    const res = decodeResponse(bytes.subarray(10));
    expect(res.status).toBeUndefined();
    const reply = taskV2.ConnectResponse.decode(res.payload);
    expect(reply.shimPid).toBe(19224);
    expect(reply.taskPid).toBe(19245);
  });

  it('encodes the unknown-service status reply of section 6', () => {
    expect(statusFrame(1, 12, 'service foo.Bar').toString('hex')).toBe(
      '00000015000000010200' + '0a13080c120f7365727669636520666f6f2e426172',
    );
  });

  it('encodes a successful empty response as a bare header (no status field)', () => {
    expect(responseFrame(5, { payload: new Uint8Array(0) }).toString('hex')).toBe('00000000000000050200');
    expect(Buffer.from(encodeResponse({ payload: Buffer.from('0801', 'hex') })).toString('hex')).toBe('12020801');
  });

  it('omits empty fields in Request like Go does', () => {
    expect(Buffer.from(encodeRequest({ service: 'a', method: 'b', payload: new Uint8Array(0) })).toString('hex')).toBe(
      '0a01611201' + '62',
    );
  });

  it('round-trips status details and ignores unknown fields', () => {
    const bytes = encodeResponse({ status: { code: 5, message: 'x: not found', details: [Buffer.from('0a0174', 'hex')] } });
    const withUnknown = Buffer.concat([Buffer.from(bytes), Buffer.from('1803', 'hex')]);
    const res = decodeResponse(withUnknown);
    expect(res.status).toEqual({ code: 5, message: 'x: not found', details: [Buffer.from('0a0174', 'hex')] });
  });

  it('rejects malformed requests with a message', () => {
    expect(() => decodeRequest(Buffer.from('0a05616263', 'hex'))).toThrow(/index out of range/);
    expect(() => decodeRequest(Buffer.from('08', 'hex'))).toThrow(/invalid wire type 0 for field 1/);
    expect(() => decodeRequest(Buffer.from('0f', 'hex'))).toThrow(/invalid wire type 7/);
    expect(() => decodeRequest(Buffer.from('00', 'hex'))).toThrow(/field number 0/);
  });

  it('builds metadata: lowercase keys, repeated values, namespace under the ttrpc key', () => {
    const kvs = wireMetadata({ metadata: { 'X-Trace': ['a', 'b'], single: 'c' }, namespace: 'ns1' });
    expect(kvs).toEqual([
      { key: 'x-trace', value: 'a' },
      { key: 'x-trace', value: 'b' },
      { key: 'single', value: 'c' },
      { key: NAMESPACE_HEADER_TTRPC, value: 'ns1' },
    ]);
    expect({ ...metadataFromWire(kvs!) }).toEqual({ 'x-trace': ['a', 'b'], single: ['c'], [NAMESPACE_HEADER_TTRPC]: ['ns1'] });
  });
});
