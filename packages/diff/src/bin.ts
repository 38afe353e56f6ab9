#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { diffPlugin } from './plugin.js';

await runPlugin(diffPlugin);
