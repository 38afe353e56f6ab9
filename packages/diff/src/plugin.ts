/** The diff plugin as plugin-kit runs it. */
import { diff } from '@boxd/api';
import { service, type PluginSpec } from '@boxd/plugin-kit';
import { parseDiffConfig } from './config.js';
import { diffService } from './service.js';
import { inlineRunner, workerPoolRunner } from './worker/runner.js';

export const diffPlugin: PluginSpec = {
  name: 'diff',
  setup(ctx) {
    const config = parseDiffConfig(ctx.config, ctx.root);
    const runner = config.workers > 0 ? workerPoolRunner(config, config.workers, ctx.logger) : inlineRunner(config, ctx.logger);
    ctx.logger.info({ content: config.contentAddress, transport: config.contentTransport, workers: config.workers }, 'diff service ready');
    return {
      services: [service(diff.DiffService, diffService(runner, config))],
      close: () => runner.close(),
    };
  },
};
