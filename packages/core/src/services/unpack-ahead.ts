/**
 * Unpacking ahead: once a blob has been committed through the Content API
 * (an import or a pull writing its layers), the diff plugin is asked to stage
 * it (boxd.diff.v1.Staging), so the Apply that follows finds the layer
 * extracted already and only moves it into its snapshot.
 *
 * Only blobs whose first bytes look like a layer (gzip, zstd, a tar header)
 * are offered: manifests, configs and other content never start the diff
 * plugin. A layer's write starts it (and the snapshotter) as its first bytes
 * come in, so neither start delays the staging. Fire and forget: a commit
 * never waits for it, a failure only loses the head start, and a diff plugin
 * that does not serve Staging (upstream's, say) is not asked again.
 */
import { boxdDiff, Code, content, isCode, type ServiceClient } from '@boxd/api';
import type Long from 'long';
import type { Logger } from 'pino';

type Staging = ServiceClient<typeof boxdDiff.StagingService>;
type Store = ServiceClient<typeof content.ContentService>;

const TAR_BLOCK = 512;
/** As much of a blob's start as `looksLikeLayer` reads. */
export const LAYER_HEAD_BYTES = TAR_BLOCK;

/** gzip, zstd (a frame or a skippable frame), or a tar header block with a valid checksum. */
export function looksLikeLayer(head: Uint8Array): boolean {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return true;
  if (head.length >= 4 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18 && (head[0]! & 0xf0) === 0x50) return true;
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return true;
  if (head.length < TAR_BLOCK) return false;
  const stored = Number.parseInt(Buffer.from(head.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) if (i < 148 || i >= 156) sum += head[i]!;
  return stored === sum;
}

export class UnpackAhead {
  private served = true;

  constructor(
    /** The diff plugin's Staging client; throws when no diff plugin is configured. */
    private readonly staging: () => Staging,
    /** The content store the blobs are committed to. */
    private readonly store: () => Store,
    private readonly logger: Logger,
    /**
     * A layer is coming in: its staging (the diff plugin) and an unpack (the
     * snapshotter) are likely to follow, so they can start meanwhile.
     */
    private readonly layerArrived: () => void = () => undefined,
  ) {}

  /**
   * A write's first bytes are in: when they look like a layer, the plugins its
   * staging and unpack need start while the rest of it is written.
   */
  writing(head: Uint8Array): void {
    if (this.served && looksLikeLayer(head)) this.layerArrived();
  }

  /**
   * A blob was committed in `namespace`: have the diff plugin stage it if it
   * is a layer. `written`: its first bytes as the write sent them, read back
   * from the store when missing or too few to tell. The promise settles when
   * that is done with; callers need not wait for it, and it never rejects.
   */
  async committed(digest: string, size: Long | number | string | null | undefined, namespace: string, written?: Uint8Array): Promise<void> {
    if (!this.served || !digest) return;
    try {
      const head = written && written.length >= Math.min(TAR_BLOCK, Number(size ?? 0)) ? written : await this.head(digest);
      if (!looksLikeLayer(head)) return;
      this.layerArrived();
      this.logger.debug({ digest }, 'unpack ahead: staging');
      // No signal of the write's call: the write is over long before staging is.
      const res = await this.staging().Stage({ digest, size: size ?? 0 }, { namespace });
      this.logger.debug({ digest, staged: res.staged }, 'unpack ahead');
    } catch (err) {
      if (isCode(err, Code.UNIMPLEMENTED)) this.served = false;
      else this.logger.debug({ err, digest }, 'unpack ahead skipped');
    }
  }

  private async head(digest: string): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const chunk of this.store().Read({ digest, offset: 0, size: TAR_BLOCK })) parts.push(chunk.data);
    return Buffer.concat(parts);
  }
}
