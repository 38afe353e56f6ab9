/** A served request keeps the bytes it was decoded from, so a relay can forward them without re-encoding. */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { content, type ServiceImplementation } from '@boxd/api';
import { GrpcServer, createGrpcClient, receivedWire } from '../src/index.js';

const codec = content.ContentService.methods.Write.requestType;

it('hands handlers the wire bytes of each request, and none for a copy', async () => {
  const dir = await mkdtemp('/tmp/bx-wire-');
  const socket = join(dir, 'g.sock');
  const seen: Array<{ decoded: unknown; fromWire: unknown; copyWire: unknown }> = [];
  const impl = {
    Write: async function* (requests) {
      for await (const r of requests) {
        const wire = receivedWire(r);
        seen.push({ decoded: r, fromWire: wire && codec.decode(wire), copyWire: receivedWire({ ...r }) });
        yield { action: r.action, offset: r.data.length };
      }
    },
  } as ServiceImplementation<typeof content.ContentService>;
  const server = new GrpcServer().addService(content.ContentService, impl);
  await server.listen(socket);
  const client = createGrpcClient(content.ContentService, socket);
  try {
    const call = client.Write();
    await call.send({ action: content.WriteAction.WRITE, ref: 'r', offset: 7, data: Buffer.from('payload'), labels: { a: 'b' } });
    await call.recv();
    await call.end();
    expect(await call.recv()).toBeUndefined();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.fromWire).toEqual(seen[0]!.decoded);
    expect(seen[0]!.copyWire).toBeUndefined();
  } finally {
    client.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
