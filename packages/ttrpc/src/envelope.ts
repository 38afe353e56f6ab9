/**
 * The ttrpc envelope messages (`ttrpc.Request`, `ttrpc.Response`,
 * `ttrpc.KeyValue`) and `google.rpc.Status`, hand-encoded so the hot path
 * needs no reflection. Field order and omission of defaults match Go's
 * output byte for byte.
 */
import protobuf from 'protobufjs/minimal.js';
import Long from 'long';

const { Reader, Writer } = protobuf;
type Reader = protobuf.Reader;
type Writer = protobuf.Writer;

export interface KeyValue {
  key: string;
  value: string;
}

export interface Request {
  service: string;
  method: string;
  payload: Uint8Array;
  /** Remaining deadline in ns; zero means none. */
  timeoutNano: Long;
  metadata: KeyValue[];
}

export interface Status {
  code: number;
  message: string;
  /** Each entry is one encoded `google.protobuf.Any`, passed through untouched. */
  details: Uint8Array[];
}

export interface Response {
  status?: Status;
  payload: Uint8Array;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const EMPTY = new Uint8Array(0);

export function writeRequest(w: Writer, req: Pick<Request, 'service' | 'method'> & Partial<Request>): Writer {
  if (req.service) w.uint32(0x0a).string(req.service);
  if (req.method) w.uint32(0x12).string(req.method);
  if (req.payload && req.payload.length) w.uint32(0x1a).bytes(req.payload);
  const t = req.timeoutNano;
  if (t && !t.isZero()) w.uint32(0x20).int64(t);
  const md = req.metadata;
  if (md) {
    for (let i = 0; i < md.length; i++) {
      const kv = md[i]!;
      w.uint32(0x2a).fork();
      if (kv.key) w.uint32(0x0a).string(kv.key);
      if (kv.value) w.uint32(0x12).string(kv.value);
      w.ldelim();
    }
  }
  return w;
}

export function writeStatus(w: Writer, status: Status): Writer {
  if (status.code) w.uint32(0x08).int32(status.code);
  if (status.message) w.uint32(0x12).string(status.message);
  for (const d of status.details) w.uint32(0x1a).bytes(d);
  return w;
}

export function writeResponse(w: Writer, res: Partial<Response>): Writer {
  if (res.status) writeStatus(w.uint32(0x0a).fork(), res.status).ldelim();
  if (res.payload && res.payload.length) w.uint32(0x12).bytes(res.payload);
  return w;
}

export function encodeRequest(req: Pick<Request, 'service' | 'method'> & Partial<Request>): Uint8Array {
  return writeRequest(Writer.create(), req).finish();
}

export function encodeResponse(res: Partial<Response>): Uint8Array {
  return writeResponse(Writer.create(), res).finish();
}

function expectWire(field: number, got: number, want: number): void {
  if (got !== want) throw new Error(`invalid wire type ${got} for field ${field}`);
}

// protobufjs' BufferReader.string() clamps a length running past the end
// instead of failing; bytes() checks it.
function str(r: Reader): string {
  const b = r.bytes();
  return Buffer.isBuffer(b) ? b.toString('utf8') : Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');
}

function nextTag(r: Reader): number {
  const tag = r.uint32();
  if (tag >>> 3 === 0) throw new Error(`invalid field number 0 at offset ${r.pos}`);
  return tag;
}

function decodeKeyValue(r: Reader, end: number): KeyValue {
  const kv: KeyValue = { key: '', value: '' };
  while (r.pos < end) {
    const tag = nextTag(r);
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expectWire(1, wire, WIRE_LEN);
        kv.key = str(r);
        break;
      case 2:
        expectWire(2, wire, WIRE_LEN);
        kv.value = str(r);
        break;
      default:
        r.skipType(wire);
    }
  }
  if (r.pos !== end) throw new Error('truncated KeyValue');
  return kv;
}

/** Decodes a `ttrpc.Request`; throws with a descriptive message on malformed input. */
export function decodeRequest(bytes: Uint8Array): Request {
  const r = Reader.create(bytes);
  const req: Request = { service: '', method: '', payload: EMPTY, timeoutNano: Long.ZERO, metadata: [] };
  while (r.pos < r.len) {
    const tag = nextTag(r);
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expectWire(1, wire, WIRE_LEN);
        req.service = str(r);
        break;
      case 2:
        expectWire(2, wire, WIRE_LEN);
        req.method = str(r);
        break;
      case 3:
        expectWire(3, wire, WIRE_LEN);
        req.payload = r.bytes();
        break;
      case 4: {
        expectWire(4, wire, WIRE_VARINT);
        // protobufjs yields a Long only when configured with one; either way
        // the bits are exact.
        const v = r.int64() as unknown as { low: number; high: number };
        req.timeoutNano = Long.fromBits(v.low, v.high, false);
        break;
      }
      case 5: {
        expectWire(5, wire, WIRE_LEN);
        const len = r.uint32();
        const end = r.pos + len;
        if (end > r.len) throw new Error(`index out of range: ${r.pos} + ${len} > ${r.len}`);
        req.metadata.push(decodeKeyValue(r, end));
        break;
      }
      default:
        r.skipType(wire);
    }
  }
  return req;
}

function decodeStatus(r: Reader, end: number): Status {
  const s: Status = { code: 0, message: '', details: [] };
  while (r.pos < end) {
    const tag = nextTag(r);
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expectWire(1, wire, WIRE_VARINT);
        s.code = r.int32();
        break;
      case 2:
        expectWire(2, wire, WIRE_LEN);
        s.message = str(r);
        break;
      case 3:
        expectWire(3, wire, WIRE_LEN);
        s.details.push(r.bytes());
        break;
      default:
        r.skipType(wire);
    }
  }
  if (r.pos !== end) throw new Error('truncated Status');
  return s;
}

/** Decodes a `ttrpc.Response`; an absent status means success. */
export function decodeResponse(bytes: Uint8Array): Response {
  const r = Reader.create(bytes);
  const res: Response = { payload: EMPTY };
  while (r.pos < r.len) {
    const tag = nextTag(r);
    const wire = tag & 7;
    switch (tag >>> 3) {
      case 1: {
        expectWire(1, wire, WIRE_LEN);
        const len = r.uint32();
        const end = r.pos + len;
        if (end > r.len) throw new Error(`index out of range: ${r.pos} + ${len} > ${r.len}`);
        res.status = decodeStatus(r, end);
        break;
      }
      case 2:
        expectWire(2, wire, WIRE_LEN);
        res.payload = r.bytes();
        break;
      default:
        r.skipType(wire);
    }
  }
  return res;
}

/** Folds repeated KeyValues into lowercase key -> values. */
export function metadataFromWire(kvs: KeyValue[]): Record<string, string[]> {
  const md: Record<string, string[]> = Object.create(null);
  for (const { key, value } of kvs) {
    const k = key.toLowerCase();
    const list = md[k];
    if (list) list.push(value);
    else md[k] = [value];
  }
  return md;
}
