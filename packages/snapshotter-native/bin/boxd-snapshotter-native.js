#!/usr/bin/env node
// Committed launcher: npm links it at install time, before dist/ is built.
// The program as one file (tools/bundle.mjs): a start loads no module tree.
import '../dist/bundle/bin.js';
