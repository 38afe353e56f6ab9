#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { metadataPlugin } from './plugin.js';

void runPlugin(metadataPlugin);
