#!/usr/bin/env node
import { parseArgs } from 'node:util';
import pino from 'pino';
import { defaultConfigToml, loadCoreConfig } from './config.js';
import { startDaemon } from './daemon.js';
import { stopOnSignals } from '@boxd/plugin-kit';

const USAGE = `Usage: boxd [--config FILE] [--root DIR] [--state DIR] [--address SOCK] [--log-level LEVEL]
       boxd config default     print the built-in config
`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      root: { type: 'string' },
      state: { type: 'string' },
      address: { type: 'string', short: 'a' },
      'log-level': { type: 'string', short: 'l' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void process.stdout.write(USAGE);
  if (positionals[0] === 'config' && positionals[1] === 'default') return void process.stdout.write(defaultConfigToml());
  if (positionals.length) throw new Error(`unknown command: ${positionals.join(' ')}\n${USAGE}`);

  const logger = pino({ name: 'boxd', level: values['log-level'] ?? 'info' }, pino.destination({ fd: 2, sync: false }));
  const config = await loadCoreConfig(values.config, { root: values.root, state: values.state, address: values.address });
  const daemon = await startDaemon(config, logger);
  stopOnSignals(() => daemon.stop(), logger);
}

main().catch((err: Error) => {
  process.stderr.write(`boxd: ${err.message}\n`);
  process.exit(1);
});
