/** The diff plugin as plugin-kit runs it. */
import { boxdDiff, diff } from '@boxd/api';
import { service, type PluginSpec } from '@boxd/plugin-kit';
import { parseDiffConfig } from './config.js';
import { connectContentStore } from './content/store.js';
import { diffService, stagingService } from './service.js';
import { Stager } from './staging/stager.js';
import { inlineRunner, workerPoolRunner } from './worker/runner.js';

export const diffPlugin: PluginSpec = {
  name: 'diff',
  async setup(ctx) {
    const config = parseDiffConfig(ctx.config, ctx.root);
    const runner = config.workers > 0 ? workerPoolRunner(config, config.workers, ctx.logger) : inlineRunner(config, ctx.logger);
    const content = connectContentStore(config.contentAddress, config.contentTransport);
    const stager = await Stager.open(config.staging, runner, content, ctx.logger);
    ctx.logger.info({ content: config.contentAddress, transport: config.contentTransport, workers: config.workers }, 'diff service ready');
    return {
      services: [
        service(diff.DiffService, diffService({ runner, config, content, stager, logger: ctx.logger })),
        service(boxdDiff.StagingService, stagingService(stager, config)),
      ],
      close: async () => {
        await stager.close();
        await runner.close();
        content.close();
      },
    };
  },
};
