/**
 * Typed errors that keep their meaning across process boundaries.
 *
 * Every error carries a gRPC status code. On the wire the message gets the
 * same class suffix containerd's errdefs appends (": not found"), so upstream
 * clients such as `ctr` strip and re-wrap it exactly as they do for containerd.
 */

export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const codeNames = new Map<number, string>(Object.entries(Code).map(([k, v]) => [v, k]));

export function codeName(code: number): string {
  return codeNames.get(code) ?? `CODE_${code}`;
}

/** The suffix containerd's errdefs adds to an error string of each class. */
const wireSuffix: Partial<Record<number, string>> = {
  [Code.INVALID_ARGUMENT]: 'invalid argument',
  [Code.NOT_FOUND]: 'not found',
  [Code.ALREADY_EXISTS]: 'already exists',
  [Code.FAILED_PRECONDITION]: 'failed precondition',
  [Code.UNAVAILABLE]: 'unavailable',
  [Code.UNIMPLEMENTED]: 'not implemented',
};

// A global symbol brand: instanceof fails when two copies of @boxd/api are
// installed side by side, the brand does not.
const BRAND = Symbol.for('@boxd/api.BoxdError');

export class BoxdError extends Error {
  readonly code: Code;
  readonly details: Uint8Array[];
  constructor(code: Code, message: string, options?: { cause?: unknown; details?: Uint8Array[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options?.details ?? [];
    this.name = `BoxdError(${codeName(code)})`;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

function defineClass(code: Code, name: string) {
  const cls = class extends BoxdError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options);
      this.name = name;
    }
  };
  Object.defineProperty(cls, 'name', { value: name });
  return cls;
}

export const InvalidArgumentError = defineClass(Code.INVALID_ARGUMENT, 'InvalidArgumentError');
export const NotFoundError = defineClass(Code.NOT_FOUND, 'NotFoundError');
export const AlreadyExistsError = defineClass(Code.ALREADY_EXISTS, 'AlreadyExistsError');
export const FailedPreconditionError = defineClass(Code.FAILED_PRECONDITION, 'FailedPreconditionError');
export const UnavailableError = defineClass(Code.UNAVAILABLE, 'UnavailableError');
export const UnimplementedError = defineClass(Code.UNIMPLEMENTED, 'UnimplementedError');
export const OutOfRangeError = defineClass(Code.OUT_OF_RANGE, 'OutOfRangeError');
export const ResourceExhaustedError = defineClass(Code.RESOURCE_EXHAUSTED, 'ResourceExhaustedError');
export const PermissionDeniedError = defineClass(Code.PERMISSION_DENIED, 'PermissionDeniedError');
export const DeadlineExceededError = defineClass(Code.DEADLINE_EXCEEDED, 'DeadlineExceededError');
export const CancelledError = defineClass(Code.CANCELLED, 'CancelledError');
export const InternalError = defineClass(Code.INTERNAL, 'InternalError');
export const AbortedError = defineClass(Code.ABORTED, 'AbortedError');
export const DataLossError = defineClass(Code.DATA_LOSS, 'DataLossError');
export const UnknownError = defineClass(Code.UNKNOWN, 'UnknownError');

export function isBoxdError(err: unknown): err is BoxdError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[BRAND] === true;
}

/** The status code of any thrown value; non-boxd errors map by their Node errno. */
export function errorCode(err: unknown): Code {
  if (isBoxdError(err)) return err.code;
  const errno = (err as { code?: unknown })?.code;
  switch (errno) {
    case 'ENOENT':
      return Code.NOT_FOUND;
    case 'EEXIST':
      return Code.ALREADY_EXISTS;
    case 'EACCES':
    case 'EPERM':
      return Code.PERMISSION_DENIED;
    case 'ABORT_ERR':
      return Code.CANCELLED;
    default:
      return Code.UNKNOWN;
  }
}

export function isCode(err: unknown, code: Code): boolean {
  return errorCode(err) === code;
}
export const isNotFound = (err: unknown) => isCode(err, Code.NOT_FOUND);
export const isAlreadyExists = (err: unknown) => isCode(err, Code.ALREADY_EXISTS);
export const isUnavailable = (err: unknown) => isCode(err, Code.UNAVAILABLE);

/** The message as it goes on the wire, with containerd's class suffix. */
export function toWireMessage(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  const suffix = wireSuffix[code];
  if (!suffix || message.endsWith(`: ${suffix}`) || message === suffix) return message;
  return message ? `${message}: ${suffix}` : suffix;
}

/** Rebuild a typed error from a status received from a peer. */
export function fromStatus(code: number, message: string, details: Uint8Array[] = []): BoxdError {
  const suffix = wireSuffix[code];
  let text = message;
  if (suffix && text.endsWith(`: ${suffix}`)) text = text.slice(0, -suffix.length - 2);
  const cls = classByCode.get(code);
  const err = cls ? new cls(text) : new BoxdError(Code.UNKNOWN, text);
  err.details.push(...details);
  return err;
}

const classByCode = new Map<number, new (message: string) => BoxdError>([
  [Code.INVALID_ARGUMENT, InvalidArgumentError],
  [Code.NOT_FOUND, NotFoundError],
  [Code.ALREADY_EXISTS, AlreadyExistsError],
  [Code.FAILED_PRECONDITION, FailedPreconditionError],
  [Code.UNAVAILABLE, UnavailableError],
  [Code.UNIMPLEMENTED, UnimplementedError],
  [Code.OUT_OF_RANGE, OutOfRangeError],
  [Code.RESOURCE_EXHAUSTED, ResourceExhaustedError],
  [Code.PERMISSION_DENIED, PermissionDeniedError],
  [Code.DEADLINE_EXCEEDED, DeadlineExceededError],
  [Code.CANCELLED, CancelledError],
  [Code.INTERNAL, InternalError],
  [Code.ABORTED, AbortedError],
  [Code.DATA_LOSS, DataLossError],
  [Code.UNKNOWN, UnknownError],
]);
