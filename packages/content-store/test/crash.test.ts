/**
 * kill -9 of the real plugin process (node dist/bin.js) in the middle of
 * writes and commits: after a restart every ingest resumes where its bytes on
 * disk end, every blob file hashes to its name, every record has its blob and
 * every blob its record, and nothing acknowledged is lost.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import Long from 'long';
import { content } from '@boxd/api';
import { createGrpcClient } from '@boxd/grpc';
import { spawnDaemon, waitFor, waitForSocket, type Daemon } from '@boxd/test-utils';
import { StoreLayout } from '../src/layout.js';

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const MiB = 1 << 20;
type Client = ReturnType<typeof createGrpcClient<typeof content.ContentService>>;

let dir: string;
let root: string;
let socket: string;
let plugin: Daemon | undefined;
let client: Client | undefined;

async function start(): Promise<Client> {
  plugin = spawnDaemon(process.execPath, [BIN, '--grpc-address', socket, '--root', root, '--log-level', 'warn'], join(dir, 'plugin.log'));
  await waitForSocket(socket);
  client = createGrpcClient(content.ContentService, socket);
  return client;
}

async function killHard(): Promise<void> {
  client?.close();
  plugin!.child.kill('SIGKILL');
  await plugin!.exited;
}

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-crash-');
  root = join(dir, 'root');
  socket = join(dir, 'g.sock');
});

afterEach(async () => {
  client?.close();
  await plugin?.stop();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const num = (v: Long | number | string | null | undefined) => Long.fromValue((v ?? 0) as Long | number | string).toNumber();

/** A large blob defined chunk by chunk, so any byte range can be regenerated without holding it all. */
class BigBlob {
  private readonly base = randomBytes(MiB);
  constructor(readonly size: number) {}

  chunk(index: number): Buffer {
    const chunk = Buffer.from(this.base.subarray(0, Math.min(MiB, this.size - index * MiB)));
    chunk.writeUInt32BE(index, 0);
    return chunk;
  }

  /** Bytes from `offset` to the end, in messages of at most 1 MiB. */
  *from(offset: number): Generator<{ offset: number; data: Buffer }> {
    for (let index = Math.floor(offset / MiB); index * MiB < this.size; index++) {
      const start = Math.max(offset, index * MiB);
      yield { offset: start, data: this.chunk(index).subarray(start - index * MiB) };
    }
  }

  digest(): string {
    const hash = createHash('sha256');
    for (const { data } of this.from(0)) hash.update(data);
    return `sha256:${hash.digest('hex')}`;
  }
}

/** Every file under blobs/ hashes to its name, and List shows exactly those files. */
async function expectConsistent(c: Client): Promise<void> {
  const files: string[] = [];
  for (const hex of await readdir(join(root, 'blobs', 'sha256')).catch(() => [])) {
    const digest = `sha256:${hex}`;
    const bytes = await readFile(join(root, 'blobs', 'sha256', hex));
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, `blob file ${hex}`).toBe(digest);
    files.push(digest);
  }
  const listed: string[] = [];
  for await (const batch of c.List({ filters: [] })) listed.push(...batch.info.map((info) => info.digest));
  expect(listed.sort()).toEqual(files.sort());
}

describe('kill -9', () => {
  it('mid-write: the restarted plugin resumes the ingest at the bytes on disk and commits it', async () => {
    const blob = new BigBlob(64 * MiB);
    const ref = 'crash-big';
    const c = await start();
    const call = c.Write();
    await call.send({ action: content.WriteAction.STAT, ref, total: blob.size });
    await call.recv();
    let acknowledged = 0;
    const acks = (async () => {
      for (let response = await call.recv().catch(() => undefined); response; response = await call.recv().catch(() => undefined)) {
        acknowledged = num(response.offset);
      }
    })();
    for (const message of blob.from(0)) {
      if (acknowledged >= 16 * MiB) break;
      await call.send({ action: content.WriteAction.WRITE, offset: message.offset, data: message.data });
    }
    await killHard();
    await acks;

    const c2 = await start();
    const layout = new StoreLayout(root);
    const onDisk = (await stat(layout.ingestDataPath(layout.ingestKey(ref)))).size;
    const { status } = await c2.Status({ ref });
    expect(num(status?.offset)).toBe(onDisk);
    // A WRITE is answered while its bytes go to the file (one write in flight, see
    // IngestWriter.write): the file may trail the last answer by that one message, never
    // more, and Status says where it really is, which is where the client resumes.
    expect(onDisk).toBeGreaterThanOrEqual(acknowledged - MiB);
    expect(num(status?.total)).toBe(blob.size);

    const resume = c2.Write();
    await resume.send({ action: content.WriteAction.STAT, ref });
    expect(num((await resume.recv())?.offset)).toBe(onDisk);
    let messages = 0;
    for (const message of blob.from(onDisk)) {
      await resume.send({ action: content.WriteAction.WRITE, offset: message.offset, data: message.data });
      messages++;
    }
    for (let i = 0; i < messages; i++) await resume.recv();
    const digest = blob.digest();
    await resume.send({ action: content.WriteAction.COMMIT, offset: blob.size, total: blob.size, expected: digest });
    expect((await resume.recv())?.digest).toBe(digest);
    resume.cancel();

    expect(num((await c2.Info({ digest })).info?.size)).toBe(blob.size);
    await expectConsistent(c2);
  }, 60_000);

  it('during a storm of small commits: acknowledged commits survive, with their labels, and the store stays consistent', async () => {
    for (let round = 0; round < 3; round++) {
      const c = await start();
      const committed = new Map<string, string>();
      let stop = false;
      const writers = Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const data = randomBytes(1000 + Math.floor(Math.random() * 300_000));
          const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
          let call: ReturnType<Client['Write']> | undefined;
          try {
            call = c.Write();
            await call.send({ action: content.WriteAction.STAT, ref: `storm-${round}-${w}-${i}`, total: data.length });
            await call.recv();
            await call.send({ action: content.WriteAction.COMMIT, offset: 0, data, total: data.length, expected: digest, labels: { round: String(round), writer: String(w) } });
            if ((await call.recv())?.digest === digest) committed.set(digest, String(w));
          } catch {
            return; // the plugin died under us
          } finally {
            call?.cancel();
          }
        }
      });
      // Kill at a random moment once commits are flowing, whatever the machine's load.
      await waitFor(() => committed.size > 0, 20_000);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 400));
      await killHard();
      stop = true;
      await Promise.all(writers);

      const c2 = await start();
      await expectConsistent(c2);
      for (const [digest, writer] of committed) {
        const { info } = await c2.Info({ digest });
        expect(info?.labels).toEqual({ round: String(round), writer });
      }
      await plugin!.stop();
    }
  }, 60_000);
});
