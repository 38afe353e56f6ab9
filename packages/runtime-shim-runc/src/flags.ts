/**
 * The shim command line as containerd writes it: Go `flag` syntax (`-name value`,
 * `-name=value`, `--name` accepted too), flags first, then an optional action word.
 */
export interface ShimFlags {
  namespace: string;
  /** containerd's gRPC socket path (names our socket; events go to TTRPC_ADDRESS). */
  address: string;
  publishBinary: string;
  id: string;
  bundle: string;
  /** Serve on this socket path instead of the listener inherited on fd 3. */
  socket: string;
  debug: boolean;
  version: boolean;
  /** `start`, `delete`, or undefined for the daemon. */
  action: string | undefined;
}

const VALUE_FLAGS = {
  namespace: 'namespace',
  address: 'address',
  'publish-binary': 'publishBinary',
  id: 'id',
  bundle: 'bundle',
  socket: 'socket',
} as const;

const BOOL_FLAGS = { debug: 'debug', v: 'version' } as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

export function parseFlags(argv: readonly string[]): ShimFlags {
  const flags: ShimFlags = {
    namespace: '',
    address: '',
    publishBinary: '',
    id: '',
    bundle: '',
    socket: '',
    debug: false,
    version: false,
    action: undefined,
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-') || arg === '-') break;
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const inline = eq < 0 ? undefined : body.slice(eq + 1);
    if (name in BOOL_FLAGS) {
      flags[BOOL_FLAGS[name as keyof typeof BOOL_FLAGS]] = inline === undefined ? true : parseBool(name, inline);
    } else if (name in VALUE_FLAGS) {
      const value = inline ?? argv[++i];
      if (value === undefined) throw new UsageError(`flag needs an argument: -${name}`);
      flags[VALUE_FLAGS[name as keyof typeof VALUE_FLAGS]] = value;
    } else {
      throw new UsageError(`flag provided but not defined: -${name}`);
    }
  }
  flags.action = argv[i];
  return flags;
}

function parseBool(name: string, value: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new UsageError(`invalid boolean value "${value}" for -${name}`);
}

/** Back to argv form, for the daemon that `start` spawns. */
export function daemonArgs(flags: ShimFlags): string[] {
  const args = ['-namespace', flags.namespace, '-id', flags.id, '-address', flags.address];
  if (flags.publishBinary) args.push('-publish-binary', flags.publishBinary);
  if (flags.debug) args.push('-debug');
  return args;
}
