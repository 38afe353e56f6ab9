#!/usr/bin/env -S node --max-semi-space-size=2 --heap-growing-percent=400
// Committed launcher: npm links it at install time, before dist/ is built.
// The core's own V8 flags (the #! line):
// - young generation capped at 2 MiB a semi-space: the core handles small calls and
//   relays bytes it does not keep, and V8's default (growing to 16 MiB) kept ~10 MB of
//   young-generation pages resident after every burst of calls;
// - the old generation may grow 5x between full collections: every relayed MiB of an
//   ingest arrives in fresh buffers counted against the heap, and the default growth
//   ran a full GC every few MiB. An idle core collects and compacts anyway.
import '../dist/bin.js';
