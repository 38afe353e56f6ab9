/** Layer media types and how their bytes are compressed. */

export const MEDIA_TYPE_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const DOCKER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const DOCKER_FOREIGN_TAR_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

export const LABEL_UNCOMPRESSED = 'containerd.io/uncompressed';

/** `sniff`: a Docker plain-tar layer may in fact be compressed; look at its magic. */
export type Compression = 'none' | 'gzip' | 'zstd' | 'sniff';

const byType = new Map<string, Compression>([
  [MEDIA_TYPE_TAR, 'none'],
  [MEDIA_TYPE_TAR_GZIP, 'gzip'],
  [MEDIA_TYPE_TAR_ZSTD, 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  [DOCKER_TAR, 'sniff'],
  [DOCKER_TAR_GZIP, 'gzip'],
  [DOCKER_FOREIGN_TAR_GZIP, 'gzip'],
]);

/** The built-in handling of a layer media type, or undefined when only a stream processor can read it. */
export function compressionOf(mediaType: string): Compression | undefined {
  return byType.get(mediaType);
}

/** Compression detected from the first bytes of a blob. */
export function sniffCompression(head: Uint8Array): 'none' | 'gzip' | 'zstd' {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  // zstd skippable frames: magic 0x184D2A5? little-endian.
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  return 'none';
}

/** What a Diff request's media type asks the layer to be compressed with. */
export function diffOutputCompression(mediaType: string): { mediaType: string; compression: 'none' | 'gzip' | 'zstd' } | undefined {
  const type = mediaType || MEDIA_TYPE_TAR_GZIP;
  const compression = byType.get(type);
  if (compression === undefined) return undefined;
  return { mediaType: type, compression: compression === 'sniff' ? 'none' : compression };
}
