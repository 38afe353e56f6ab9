/** GrpcServer advertises large HTTP/2 receive windows, so 1 MiB streamed messages never stall on window updates. */
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { health } from '@boxd/api';
import { GrpcServer } from '../src/index.js';

it('raises the stream and connection windows', async () => {
  const dir = await mkdtemp('/tmp/bx-h2-');
  const socket = join(dir, 'g.sock');
  const server = new GrpcServer({ streamWindow: 8 << 20, connectionWindow: 32 << 20 }).addService(health.HealthService, {
    Check: () => ({ status: health.HealthCheckResponse_ServingStatus.SERVING }),
    Watch: async function* () {},
  });
  await server.listen(socket);
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  try {
    await once(session, 'remoteSettings');
    expect(session.remoteSettings.initialWindowSize).toBe(8 << 20);
    // The connection window is granted with a WINDOW_UPDATE right after the handshake.
    await expect.poll(() => session.state.remoteWindowSize, { timeout: 2000 }).toBeGreaterThanOrEqual((32 << 20) - 65_535);
  } finally {
    session.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
