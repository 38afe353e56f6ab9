/** Hand-made layer tars for tests, written with tar-stream. */
import tar from 'tar-stream';

export interface TarSpec {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

export async function makeTar(entries: TarSpec[], options: { endBlocks?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = type === 'file' ? Buffer.from(e.content ?? '') : undefined;
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        {
          name: e.name,
          type,
          linkname: e.linkname,
          mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
          uid: e.uid ?? 0,
          gid: e.gid ?? 0,
          mtime: e.mtime ?? new Date(1_700_000_000_000),
          devmajor: e.devmajor,
          devminor: e.devminor,
          pax: e.pax,
          size: body?.length ?? 0,
        } as never,
        body ?? Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  const all = Buffer.concat(chunks);
  return options.endBlocks === false ? all.subarray(0, all.length - 1024) : all;
}

/** A lower layer for tests that apply another one over it: files, nested dirs, a dir with its own owner and mode. */
export const lowerLayer: TarSpec[] = [
  { name: 'data/', type: 'directory' },
  { name: 'data/old-1', content: 'old' },
  { name: 'data/old-dir/', type: 'directory' },
  { name: 'data/old-dir/deep', content: 'deep' },
  { name: 'data/keep-by-layer', content: 'lower version' },
  { name: 'data/nested/', type: 'directory' },
  { name: 'data/nested/old-n', content: 'old' },
  { name: 'gone', content: 'x' },
  { name: 'attrs/', type: 'directory', mode: 0o750, uid: 7, gid: 8 },
];
