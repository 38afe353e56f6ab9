/**
 * Whole frames carrying envelope messages, encoded in one allocation: the
 * writer reserves the 10 header bytes up front and they are patched once the
 * length is known.
 */
import protobuf from 'protobufjs/minimal.js';
import { HEADER_SIZE, MessageType, encodeFrame, writeHeader } from './frame.js';
import { writeRequest, writeResponse, type Request, type Response } from './envelope.js';

const { Writer } = protobuf;

function headed(): protobuf.Writer {
  // 4 + 4 bytes of fixed32 and two one-byte varints: exactly HEADER_SIZE.
  return Writer.create().fixed32(0).fixed32(0).uint32(0).uint32(0);
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** A Request frame with stream id 0; the sender stamps the id when it writes. */
export function requestFrame(req: Pick<Request, 'service' | 'method'> & Partial<Request>, flags: number): Buffer {
  const buf = toBuffer(writeRequest(headed(), req).finish());
  writeHeader(buf, buf.length - HEADER_SIZE, 0, MessageType.Request, flags);
  return buf;
}

export function stampStreamId(frame: Buffer, streamId: number): void {
  frame.writeUInt32BE(streamId, 4);
}

export function responseFrame(streamId: number, res: Partial<Response>): Buffer {
  if (!res.status && !(res.payload && res.payload.length)) return encodeFrame(streamId, MessageType.Response, 0);
  const buf = toBuffer(writeResponse(headed(), res).finish());
  writeHeader(buf, buf.length - HEADER_SIZE, streamId, MessageType.Response, 0);
  return buf;
}

export function statusFrame(streamId: number, code: number, message: string, details: Uint8Array[] = []): Buffer {
  return responseFrame(streamId, { status: { code, message, details } });
}
