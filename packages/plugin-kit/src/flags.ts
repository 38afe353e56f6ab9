import { parseArgs } from 'node:util';
import { InvalidArgumentError } from '@boxd/api';

export interface PluginFlags {
  /** ttrpc socket path. */
  address: string;
  /** Optional gRPC socket path (for upstream containerd's proxy plugins). */
  grpcAddress?: string;
  root: string;
  config?: string;
  logLevel: string;
  /** File descriptor the plugin writes "ready\n" to once it serves. */
  readyFd?: number;
  /** Group allowed on the sockets (mode 0660); owner-only 0600 otherwise. */
  socketGid?: number;
}

export function parseFlags(argv: string[], name: string): PluginFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      address: { type: 'string' },
      'grpc-address': { type: 'string' },
      root: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      'ready-fd': { type: 'string' },
      'socket-gid': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage(name));
    process.exit(0);
  }
  if (!values.address && !values['grpc-address']) throw new InvalidArgumentError('--address (ttrpc socket) or --grpc-address is required');
  return {
    address: values.address ?? '',
    grpcAddress: values['grpc-address'],
    root: values.root ?? `/var/lib/boxd/${name}`,
    config: values.config,
    logLevel: values['log-level'] ?? process.env.BOXD_LOG_LEVEL ?? 'info',
    readyFd: intFlag(values['ready-fd'], 'ready-fd'),
    socketGid: intFlag(values['socket-gid'], 'socket-gid'),
  };
}

function intFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--${flag} must be a non-negative integer, got "${value}"`);
  return n;
}

export function usage(name: string): string {
  return `Usage: ${name} --address SOCK [--grpc-address SOCK] [--root DIR] [--config FILE] [--log-level LEVEL]

  --address SOCK       serve ttrpc on this unix socket
  --grpc-address SOCK  also serve gRPC on this unix socket (for upstream containerd proxy_plugins)
  --root DIR           directory the plugin keeps its data in
  --config FILE        TOML config (the plugin's own table, or a [${name}] section)
  --log-level LEVEL    trace, debug, info, warn, error (default info)
  --ready-fd N         write "ready" to this fd once serving
  --socket-gid GID     make sockets 0660 with this group (default 0600)
`;
}
