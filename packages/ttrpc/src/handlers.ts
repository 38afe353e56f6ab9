/** Raw (bytes in, bytes out) handler shapes the server dispatches to. */
import type { CallContext } from '@boxd/api';

export type RawUnaryHandler = (payload: Buffer, ctx: CallContext) => Uint8Array | Promise<Uint8Array>;

/** The server's side of one streaming call. */
export interface RawServerStream {
  /** Next message from the client, or undefined once the client closed its side. */
  recv(): Promise<Buffer | undefined>;
  /** Sends one Data frame; resolves when the socket can take more. */
  send(message: Uint8Array): Promise<void>;
}

/**
 * Returns the final payload: sent as the Response payload for methods that do
 * not stream responses; for those that do, a non-empty value goes out as a
 * last Data frame with the close flag.
 */
export type RawStreamHandler = (
  stream: RawServerStream,
  ctx: CallContext,
) => Promise<Uint8Array | undefined | void> | Uint8Array | undefined | void;

export type RawMethod =
  | { readonly kind: 'unary'; readonly handler: RawUnaryHandler }
  | {
      readonly kind: 'stream';
      readonly requestStream: boolean;
      readonly responseStream: boolean;
      readonly handler: RawStreamHandler;
    };

/** Methods keyed by their bare rpc name (`Create`), as it appears on the wire. */
export type RawService = Readonly<Record<string, RawMethod>>;
