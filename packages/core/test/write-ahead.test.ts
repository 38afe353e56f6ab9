/**
 * Answering appends ahead of the real content store: the client's answers come
 * before the store's, the blob the store commits is every byte sent, and a
 * write the store refuses fails the relay at its next step.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Code, content, errorCode } from '@boxd/api';
import { contentStorePlugin } from '@boxd/content-store';
import { startPlugin, type RunningPlugin } from '@boxd/plugin-kit';
import { connect, createTtrpcClient, type TtrpcClient } from '@boxd/ttrpc';
import { WritesAhead } from '../src/services/write-ahead.js';

const { STAT, WRITE, COMMIT } = content.WriteAction;
const logger = pino({ level: 'silent' });
let dir: string;
let store: RunningPlugin;
let connection: TtrpcClient;
let contentClient: ReturnType<typeof createTtrpcClient<typeof content.ContentService>>;

beforeAll(async () => {
  dir = await mkdtemp('/tmp/bx-wa-');
  store = await startPlugin(contentStorePlugin, { root: join(dir, 'content'), address: join(dir, 'content.sock'), logger });
  connection = await connect(store.address!);
  contentClient = createTtrpcClient(content.ContentService, connection);
});

afterAll(async () => {
  await connection?.close();
  await store?.stop();
  await rm(dir, { recursive: true, force: true });
});

function request(fields: Partial<content.WriteContentRequest>): content.WriteContentRequest {
  return { action: WRITE, ref: '', total: 0, expected: '', offset: 0, data: new Uint8Array(), labels: {}, ...fields } as content.WriteContentRequest;
}

/** A Write stream on the store, opened with STAT as containerd's writer opens one. */
async function opened(ref: string) {
  const write = contentClient.Write();
  await write.send(request({ action: STAT, ref }));
  const ahead = new WritesAhead(() => write.recv());
  const stat = await write.recv();
  ahead.answered(stat!);
  return { write, ahead };
}

describe('WritesAhead', () => {
  it('answers appends before the store and commits exactly the bytes sent', async () => {
    const { write, ahead } = await opened('ahead-ok');
    const chunks = Array.from({ length: 9 }, () => randomBytes(256 * 1024));
    let offset = 0;
    for (const data of chunks) {
      const msg = request({ ref: 'ahead-ok', offset, data });
      expect(ahead.canAnswer(msg)).toBe(true);
      await write.send(msg);
      const answer = await ahead.answer(msg);
      offset += data.length;
      expect(Number(answer.offset)).toBe(offset);
    }
    await ahead.settle();
    const whole = Buffer.concat(chunks);
    const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
    expect(ahead.lastDigest).toBe(digest);
    await write.send(request({ action: COMMIT, ref: 'ahead-ok', offset, total: whole.length, expected: digest }));
    const committed = await write.recv();
    expect(committed?.digest).toBe(digest);
    await write.end();
    const read: Buffer[] = [];
    for await (const r of contentClient.Read({ digest, offset: 0, size: 0 })) read.push(Buffer.from(r.data));
    expect(Buffer.concat(read).equals(whole)).toBe(true);
  });

  it('answers only plain appends at the offset the store last gave', async () => {
    const { ahead } = await opened('ahead-rules');
    const data = Buffer.from('x');
    expect(ahead.canAnswer(request({ offset: 0, data }))).toBe(true);
    expect(ahead.canAnswer(request({ offset: 1, data }))).toBe(false);
    expect(ahead.canAnswer(request({ offset: 0, data: new Uint8Array() }))).toBe(false);
    expect(ahead.canAnswer(request({ offset: 0, data, expected: 'sha256:00' }))).toBe(false);
    expect(ahead.canAnswer(request({ action: COMMIT, offset: 0, data }))).toBe(false);
  });

  it('fails the relay with the store\'s own error when the store refuses a write it was answered for', async () => {
    const { write, ahead } = await opened('ahead-refused');
    // The store is at 0; an answer claiming 5 makes the next append land past its end.
    ahead.answered({ action: STAT, offset: 5, total: 0, digest: '' } as content.WriteContentResponse);
    const msg = request({ ref: 'ahead-refused', offset: 5, data: Buffer.from('after a gap') });
    expect(ahead.canAnswer(msg)).toBe(true);
    await write.send(msg);
    await ahead.answer(msg);
    const err = await ahead.settle().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(errorCode(err)).toBe(Code.OUT_OF_RANGE);
    expect(String(err)).toMatch(/current offset 0/);
    // Nothing more is answered ahead once the store has refused.
    expect(ahead.canAnswer(request({ offset: 16, data: Buffer.from('y') }))).toBe(false);
  });
});
