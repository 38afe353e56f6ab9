/**
 * @boxd/ttrpc: containerd/ttrpc over unix sockets, unary (1.0/1.1) and
 * streaming (1.2), byte-compatible with the Go implementation.
 */
import { TtrpcClient, type TtrpcClientOptions } from './client.js';

export { TtrpcServer, type TtrpcServerOptions, type CloseOptions } from './server.js';
export { TtrpcClient, type TtrpcClientOptions, type StreamShape } from './client.js';
export type { RawClientStream } from './client-calls.js';
export type { RawMethod, RawService, RawServerStream, RawUnaryHandler, RawStreamHandler } from './handlers.js';
export { createTtrpcClient, decodeReply } from './typed-client.js';
export { withWireParts, wirePartsOf, type FrameData } from './wire-parts.js';
export { rawService } from './typed-server.js';
export { socketPath, type ListenOptions } from './address.js';
export { silentLogger, type Logger } from './logger.js';
export {
  FrameReader,
  Flags,
  HEADER_SIZE,
  MAX_DATA_LENGTH,
  MessageType,
  encodeFrame,
  oversizeMessage,
  type FrameSink,
} from './frame.js';
export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  type KeyValue,
  type Request,
  type Response,
  type Status,
} from './envelope.js';

/** Same as `TtrpcClient.connect`. */
export function connect(address: string, options?: TtrpcClientOptions): Promise<TtrpcClient> {
  return TtrpcClient.connect(address, options);
}
