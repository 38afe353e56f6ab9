#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { eventsBusPlugin, setupEventsBus } from './plugin.js';

await runPlugin({
  ...eventsBusPlugin,
  setup(ctx) {
    const instance = setupEventsBus(ctx);
    // Subscribe streams never end on their own, so the graceful stop would
    // wait out its whole drain timeout for them. Registered before
    // runPlugin's own handlers, this ends them first.
    const endSubscriptions = () => instance.bus.close();
    process.once('SIGTERM', endSubscriptions);
    process.once('SIGINT', endSubscriptions);
    return instance;
  },
});
