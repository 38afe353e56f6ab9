#!/usr/bin/env node
import { runPlugin } from '@boxd/plugin-kit';
import { raiseHttp2Windows } from './http2-windows.js';
import { contentStorePlugin } from './plugin.js';

// HTTP/2 is loaded only by a process that serves gRPC (upstream containerd's proxy plugin).
if (process.argv.some((arg) => arg === '--grpc-address' || arg.startsWith('--grpc-address='))) await raiseHttp2Windows();
await runPlugin(contentStorePlugin);
