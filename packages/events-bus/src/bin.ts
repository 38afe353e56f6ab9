#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { eventsBusPlugin } from './plugin.js';

await runPlugin(eventsBusPlugin);
