#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { overlayPlugin } from './plugin.js';

await runPlugin(overlayPlugin());
