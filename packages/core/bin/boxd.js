#!/usr/bin/env node
// Committed launcher: npm links it at install time, before dist/ is built.
import '../dist/bin.js';
