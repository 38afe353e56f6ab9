#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { nativePlugin } from './plugin.js';

await runPlugin(nativePlugin());
