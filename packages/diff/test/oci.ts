/** Reading an OCI image layout (as umoci and skopeo write them) in tests. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface LayoutLayer {
  mediaType: string;
  digest: string;
  size: string;
  bytes: Buffer;
  diffId: string;
}

async function blob(layout: string, digest: string): Promise<Buffer> {
  const [algorithm, hex] = digest.split(':');
  return readFile(join(layout, 'blobs', algorithm!, hex!));
}

/** The layers of the image tagged `tag` (or the only image), bottom first, with their DiffIDs. */
export async function layoutLayers(layout: string, tag?: string): Promise<LayoutLayer[]> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = tag ? index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag) : index.manifests[0];
  if (!desc) throw new Error(`no manifest ${tag ?? ''} in ${layout}`);
  const manifest = JSON.parse((await blob(layout, desc.digest)).toString()) as { config: { digest: string }; layers: { mediaType: string; digest: string; size: number }[] };
  const config = JSON.parse((await blob(layout, manifest.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
  return Promise.all(
    manifest.layers.map(async (layer, i) => ({
      mediaType: layer.mediaType,
      digest: layer.digest,
      size: String(layer.size),
      bytes: await blob(layout, layer.digest),
      diffId: config.rootfs.diff_ids[i]!,
    })),
  );
}
