#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { runPlugin } from '@boxd/plugin-kit';
import { contentStorePlugin } from './plugin.js';

// An ingest brings every MiB in fresh Buffers (socket reads, then the whole
// frame). Their bytes count against V8's heap limit, which by default grows
// only a little past a small live heap: a full GC every few MiB, about 1 ms
// per MiB ingested. Letting the heap grow to 5x its live size before the next
// GC cuts that tenfold; the garbage held meanwhile is bounded by the same factor.
setFlagsFromString('--heap-growing-percent=400');

await runPlugin(contentStorePlugin);
