#!/usr/bin/env node
/**
 * containerd-shim-boxd-v2. Only the flag parser and `start` (node built-ins alone) are
 * loaded up front; the daemon and `delete` load what they need when they run.
 */
import { parseFlags } from './flags.js';
import { CLAIM_ENV, claimAsDaemon, startCommand } from './start.js';

const VERSION = '0.1.0';

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.version) {
    process.stdout.write(`containerd-shim-boxd-v2:\n  Version: ${VERSION}\n`);
    return;
  }
  switch (flags.action) {
    case 'start': {
      process.stdout.write(await startCommand(flags));
      return;
    }
    case 'delete': {
      const { deleteCommand } = await import('./delete-command.js');
      process.stdout.write(await deleteCommand(flags));
      return;
    }
    case undefined: {
      const claimPath = process.env[CLAIM_ENV];
      const claimed = claimPath ? await claimAsDaemon(claimPath) : undefined;
      if (claimPath && !claimed) return;
      const { runDaemon } = await import('./daemon.js');
      await runDaemon(flags, claimed);
      return;
    }
    default:
      throw new Error(`unknown action ${JSON.stringify(flags.action)}`);
  }
}

main().then(
  () => {
    // The daemon keeps running on its own handles; the commands exit once their output is flushed.
  },
  (err: unknown) => {
    process.stderr.write(`containerd-shim-boxd-v2: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
