import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk } from './exec.js';
import { applyLayer, populateBusyboxRootfs, type FileContent, type TestLayer } from './rootfs.js';

export interface BuildTestImageOptions {
  /** Directory to build in; the layout and archive are created below it. */
  dir: string;
  name?: string;
  tag?: string;
  /** Layers stacked on top of the busybox base layer, in order. */
  layers?: TestLayer[];
  /** Extra files put into the base layer. */
  extraFiles?: Record<string, FileContent>;
}

export interface TestImage {
  /** oci-archive tar, importable with `ctr images import` and skopeo's `oci-archive:`. */
  archive: string;
  /** The OCI image layout directory (the tag is `tag`). */
  layout: string;
  /** Full image name the archive imports as, e.g. docker.io/library/bb:latest. */
  ref: string;
  tag: string;
  /** Digest of the image manifest. */
  digest: string;
}

/** Annotation ctr reads to name an image from an OCI archive. */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
export const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const cache = new Map<string, Promise<TestImage>>();

function goArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

function imageKey(name: string, tag: string, opts: BuildTestImageOptions): string {
  const spec = JSON.stringify({ layers: opts.layers ?? [], extraFiles: opts.extraFiles ?? {} });
  return `${name}:${tag}:${createHash('sha256').update(spec).digest('hex').slice(0, 12)}`;
}

async function stillThere(image: TestImage): Promise<boolean> {
  try {
    await access(image.archive);
    await access(join(image.layout, 'index.json'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds a busybox OCI image offline with umoci and packs it as an oci-archive.
 * Results are cached per (name, tag, layers, extraFiles) for the life of the process,
 * as long as the files of the cached build still exist.
 */
export async function buildTestImage(opts: BuildTestImageOptions): Promise<TestImage> {
  const name = opts.name ?? 'bb';
  const tag = opts.tag ?? 'latest';
  const key = imageKey(name, tag, opts);
  const cached = cache.get(key);
  if (cached) {
    const image = await cached.catch(() => undefined);
    if (image && (await stillThere(image))) return image;
  }
  const building = build(name, tag, key, opts);
  cache.set(key, building);
  return building;
}

async function build(name: string, tag: string, key: string, opts: BuildTestImageOptions): Promise<TestImage> {
  const work = join(opts.dir, `img-${key.replace(/[^a-zA-Z0-9]/g, '-')}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const layout = join(work, 'layout');
  const image = `${layout}:${tag}`;

  await runOk('umoci', ['init', '--layout', layout]);
  await runOk('umoci', ['new', '--image', image]);
  await runOk('umoci', [
    'config', '--image', image,
    '--os', 'linux', '--architecture', goArch(),
    '--config.cmd', 'sh',
    '--config.env', `PATH=${IMAGE_PATH}`,
    '--config.workingdir', '/',
  ]);
  await addLayer(work, image, async (rootfs) => {
    await populateBusyboxRootfs(rootfs);
    if (opts.extraFiles) await applyLayer(rootfs, { files: opts.extraFiles });
  });
  for (const layer of opts.layers ?? []) {
    await addLayer(work, image, (rootfs) => applyLayer(rootfs, layer));
  }
  await runOk('umoci', ['gc', '--layout', layout]);

  const ref = `docker.io/library/${name}:${tag}`;
  const digest = await nameManifest(layout, tag, ref);
  const archive = join(work, `${name}-${tag}.tar`);
  await runOk('tar', ['-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  return { archive, layout, ref, tag, digest };
}

/** Unpacks the image, lets change() edit the rootfs, and repacks the difference as a new layer. */
async function addLayer(work: string, image: string, change: (rootfs: string) => Promise<void>): Promise<void> {
  const bundle = join(work, 'bundle');
  await rm(bundle, { recursive: true, force: true });
  await runOk('umoci', ['unpack', '--image', image, bundle]);
  await change(join(bundle, 'rootfs'));
  await runOk('umoci', ['repack', '--image', image, bundle]);
  await rm(bundle, { recursive: true, force: true });
}

/** Adds the containerd image-name annotation to the tag's manifest descriptor; returns its digest. */
async function nameManifest(layout: string, tag: string, ref: string): Promise<string> {
  const indexPath = join(layout, 'index.json');
  const index = JSON.parse(await readFile(indexPath, 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!desc) throw new Error(`umoci wrote no manifest tagged ${tag} in ${indexPath}`);
  desc.annotations = { ...desc.annotations, [IMAGE_NAME_ANNOTATION]: ref };
  await writeFile(indexPath, JSON.stringify(index));
  return desc.digest;
}

/**
 * Unpacks a built test image into an OCI runtime bundle at dest (rootfs/ plus umoci's
 * generated config.json), e.g. to hand to runc or a shim.
 */
export async function unpackTestImage(image: TestImage, dest: string): Promise<string> {
  await runOk('umoci', ['unpack', '--image', `${image.layout}:${image.tag}`, dest]);
  return dest;
}
