#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { contentStorePlugin } from './plugin.js';

await runPlugin(contentStorePlugin);
