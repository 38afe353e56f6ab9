/** The plugin process advertises large HTTP/2 receive windows on its gRPC socket. */
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { health } from '@boxd/api';
import { GrpcServer } from '@boxd/grpc';
import { CONNECTION_WINDOW, STREAM_WINDOW, raiseHttp2Windows } from '../src/http2-windows.js';

it('raises the stream and connection windows of gRPC servers created afterwards', async () => {
  await raiseHttp2Windows();
  const dir = await mkdtemp('/tmp/bx-h2-');
  const socket = join(dir, 'g.sock');
  const server = new GrpcServer().addService(health.HealthService, {
    Check: () => ({ status: health.HealthCheckResponse_ServingStatus.SERVING }),
    Watch: async function* () {},
  });
  await server.listen(socket);
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  try {
    await once(session, 'remoteSettings');
    expect(session.remoteSettings.initialWindowSize).toBe(STREAM_WINDOW);
    // The connection window is granted with a WINDOW_UPDATE right after the handshake.
    await expect.poll(() => session.state.remoteWindowSize, { timeout: 2000 }).toBeGreaterThanOrEqual(CONNECTION_WINDOW - 65_535);
  } finally {
    session.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
