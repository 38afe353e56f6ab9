/**
 * Extracts tar entries onto a directory tree, either as a plain directory
 * (whiteouts delete) or as an overlayfs upper directory (whiteouts become
 * overlayfs' own markers, so layers can be applied independently).
 *
 * Synchronous fs calls on purpose: applies run in worker threads, and one
 * syscall per call is much cheaper than a thread-pool round trip per file.
 */
import {
  closeSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  chmodSync,
  constants,
  writeSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from '@boxd/api';
import { cleanEntryName, resolveDir } from './root-path.js';
import { isPrivateXattr, makeNode, readXattrs, setXattr, xattrErrno } from './special-files.js';
import type { ByteStream } from '../streams.js';
import { TarReader, type TarEntry, type TarSink } from './tar-reader.js';

export interface ApplyTarOptions {
  root: string;
  /** `plain`: whiteouts delete; `overlay`: root is an overlayfs upperdir. */
  mode: 'plain' | 'overlay';
  /** Overlay lower directories, topmost first: where missing parents take their attributes from. */
  parents?: string[];
  /**
   * A directory on the same filesystem as root for short-lived files (the
   * overlay workdir): whiteout devices are hard links of one device made
   * there, as overlayfs itself shares its whiteouts, instead of a mknod each.
   */
  scratchDir?: string;
  allowDevices: boolean;
  signal?: AbortSignal;
  warn?: (details: Record<string, unknown>, message: string) => void;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const ERRNO_EPERM = 1;
const ERRNO_ENOTSUP = 95;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

const isRoot = process.getuid?.() === 0;
// Read once: files are created with their mode, and only need a chmod when the umask took bits away.
const UMASK = process.umask();

function lstatIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

interface PendingDirTimes {
  atime: number;
  mtime: number;
}

/** A file being written: its data arrives in pieces between `entry` and `entryEnd`. */
interface OpenFile {
  fd: number;
  path: string;
  parent: string;
  entry: TarEntry;
}

/**
 * Applies the entries a TarReader hands it. Call `finish` after the last
 * one, or `abort` when the apply fails part-way.
 */
export class TarApplier implements TarSink {
  /** Paths (relative to root) this layer wrote: an opaque marker keeps them. */
  private readonly unpacked = new Set<string>();
  private readonly dirTimes = new Map<string, PendingDirTimes>();
  /** Directories (relative to root) this apply created: nothing in them predates it. Value: has the setgid bit. */
  private readonly createdDirs = new Map<string, boolean>();
  /** Parent directory names already resolved to real directories below root. */
  private readonly resolvedDirs = new Map<string, string>();
  /** Whiteout devices to hard-link, per owner. */
  private readonly whiteouts = new Map<string, string>();
  private file: OpenFile | undefined;
  /**
   * What made this apply depend on the target: parent directories the layer
   * did not list (their attributes come from the lower dirs), and overlay
   * whiteouts and opaque markers (a plain directory deletes instead).
   */
  readonly stats = { impliedDirs: 0, overlayMarkers: 0 };

  constructor(private readonly options: ApplyTarOptions) {}

  entry(entry: TarEntry): void {
    this.options.signal?.throwIfAborted();
    this.applyEntry(entry);
  }

  data(chunk: Buffer): void {
    const fd = this.file?.fd;
    if (fd === undefined) return; // data of an entry that writes no file (a whiteout, the root)
    for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
  }

  entryEnd(): void {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    try {
      this.finishFile(file);
    } finally {
      closeSync(file.fd);
    }
  }

  /** After the last entry: directory times (creating their contents changed them). */
  finish(): void {
    this.releaseTemplates();
    for (const [relative, times] of this.dirTimes) {
      const path = this.stillRealDir(relative);
      if (path) lutimesSync(path, times.atime, times.mtime);
    }
  }

  /** The apply failed: let go of what is open. */
  abort(): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
    this.releaseTemplates();
  }

  private releaseTemplates(): void {
    for (const template of this.whiteouts.values()) rmSync(template, { force: true });
    this.whiteouts.clear();
  }

  /** The path of `relative` if it is still a directory reached without symlinks (later entries may have replaced a parent). */
  private stillRealDir(relative: string): string | undefined {
    try {
      const { existing, missing } = resolveDir(this.options.root, relative.split('/'), relative);
      return missing.length === 0 && existing.join('/') === relative ? join(this.options.root, relative) : undefined;
    } catch {
      return undefined;
    }
  }

  private applyEntry(entry: TarEntry): void {
    const components = cleanEntryName(entry.name);
    if (components.length === 0) return; // the root itself keeps its own attributes
    const base = components[components.length - 1]!;
    const parent = this.ensureParent(components.slice(0, -1), entry.name);
    const path = join(this.options.root, parent, base);
    const relative = parent ? `${parent}/${base}` : base;

    if (base.startsWith(WHITEOUT_PREFIX)) return this.applyWhiteout(entry, parent, base);

    // In a directory this apply made, only this layer's own entries can exist.
    const mayExist = !this.createdDirs.has(parent) || this.unpacked.has(relative);
    const existing = mayExist ? lstatIfExists(path) : undefined;
    if (existing && !(existing.isDirectory() && entry.type === 'directory')) this.remove(path, existing);

    switch (entry.type) {
      case 'file':
        this.file = { fd: openSync(path, WRITE_FLAGS, entry.mode & 0o777), path, parent, entry };
        break;
      case 'directory':
        if (!existing?.isDirectory()) {
          mkdirSync(path, { mode: 0o700 });
          this.createdDirs.set(relative, (entry.mode & 0o2000) !== 0);
        }
        this.finishAttributes(path, entry);
        this.dirTimes.set(relative, { atime: Math.max(entry.atime ?? 0, entry.mtime), mtime: entry.mtime });
        break;
      case 'symlink':
        symlinkSync(entry.linkname, path);
        this.finishAttributes(path, entry);
        break;
      case 'link':
        linkSync(this.hardlinkTarget(entry), path);
        break;
      case 'character-device':
      case 'block-device':
        if (!this.options.allowDevices || !isRoot) {
          throw new FailedPreconditionError(`device node "${entry.name}" is not allowed (diff config allow_devices = false or not running as root)`);
        }
        makeNode(path, entry.type === 'block-device' ? 'b' : 'c', 0o600, entry.devmajor, entry.devminor);
        this.finishAttributes(path, entry);
        break;
      case 'fifo':
        makeNode(path, 'p', 0o600);
        this.finishAttributes(path, entry);
        break;
    }
    this.markUnpacked(relative);
  }

  /** Records a path this layer wrote, and its parents: an opaque marker must keep what leads to it. */
  private markUnpacked(relative: string): void {
    for (let path = relative; path && !this.unpacked.has(path); path = path.slice(0, Math.max(0, path.lastIndexOf('/')))) {
      this.unpacked.add(path);
    }
  }

  /** Removes a path; resolved directories may change when a directory or symlink goes. */
  private remove(path: string, stat: Stats | undefined): void {
    rmSync(path, { recursive: true, force: true });
    if (!stat || stat.isDirectory() || stat.isSymbolicLink()) {
      this.resolvedDirs.clear();
      this.createdDirs.clear();
    }
  }

  /** Resolves (and creates) the parent directory of an entry; returns it relative to root. */
  private ensureParent(components: string[], entryName: string): string {
    const key = components.join('/');
    const known = this.resolvedDirs.get(key);
    if (known !== undefined) return known;
    const resolved = this.resolveAndCreate(components, entryName);
    this.resolvedDirs.set(key, resolved);
    return resolved;
  }

  private resolveAndCreate(components: string[], entryName: string): string {
    const { existing, missing } = resolveDir(this.options.root, components, entryName);
    const made = [...existing];
    for (const part of missing) {
      made.push(part);
      const path = join(this.options.root, ...made);
      mkdirSync(path, { mode: 0o755 });
      this.stats.impliedDirs++;
      const setgid = this.options.mode === 'overlay' ? this.copyParentAttributes(path, made) : false;
      this.createdDirs.set(made.join('/'), setgid);
    }
    return made.join('/');
  }

  /** A directory created in an upperdir takes the attributes of the same directory below it; returns whether it is setgid. */
  private copyParentAttributes(path: string, components: string[]): boolean {
    for (const lower of this.options.parents ?? []) {
      const stat = realDirIn(lower, components);
      if (stat === 'absent') continue;
      if (stat === 'replaced') return false;
      const source = join(lower, ...components);
      if (isRoot) lchownSync(path, stat.uid, stat.gid);
      chmodSync(path, stat.mode & 0o7777);
      for (const [name, value] of readXattrs(source)) this.trySetXattr(path, name, value, components.join('/'));
      lutimesSync(path, stat.atime, stat.mtime);
      return (stat.mode & 0o2000) !== 0;
    }
    return false;
  }

  private applyWhiteout(entry: TarEntry, parent: string, base: string): void {
    const dir = join(this.options.root, parent);
    if (base === OPAQUE_MARKER) {
      if (this.options.mode === 'overlay') {
        setXattr(dir, OVERLAY_OPAQUE_XATTR, 'y');
        this.stats.overlayMarkers++;
      } else {
        this.removeLowerEntries(dir, parent);
      }
      return;
    }
    // Other `.wh..wh.` names are reserved for metadata of other tools.
    if (base.startsWith(WHITEOUT_PREFIX + WHITEOUT_PREFIX)) return;
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') throw new InvalidArgumentError(`invalid whiteout name: "${entry.name}"`);
    const target = join(dir, name);
    this.remove(target, undefined);
    if (this.options.mode === 'overlay') {
      this.makeWhiteout(target, entry.uid, entry.gid);
      this.stats.overlayMarkers++;
    }
  }

  private makeWhiteout(target: string, uid: number, gid: number): void {
    const scratch = this.options.scratchDir;
    if (scratch) {
      const key = `${uid}:${gid}`;
      let template = this.whiteouts.get(key);
      if (!template) {
        template = join(scratch, `.boxd-whiteout-${process.pid}-${threadId}-${randomBytes(6).toString('hex')}`);
        makeNode(template, 'c', 0, 0, 0);
        if (isRoot) lchownSync(template, uid, gid);
        this.whiteouts.set(key, template);
      }
      try {
        linkSync(template, target);
        return;
      } catch (err) {
        // Too many links, or another filesystem after all: a device of its own.
        if ((err as NodeJS.ErrnoException).code !== 'EMLINK' && (err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      }
    }
    makeNode(target, 'c', 0, 0, 0);
    if (isRoot) lchownSync(target, uid, gid);
  }

  /** Opaque directory on a plain tree: everything not written by this layer goes. */
  private removeLowerEntries(dir: string, relative: string): void {
    for (const name of readdirSync(dir)) {
      const rel = relative ? `${relative}/${name}` : name;
      const path = join(dir, name);
      if (!this.unpacked.has(rel)) this.remove(path, undefined);
      else if (lstatSync(path).isDirectory()) this.removeLowerEntries(path, rel);
    }
  }

  private hardlinkTarget(entry: TarEntry): string {
    let components: string[];
    try {
      components = cleanEntryName(entry.linkname);
    } catch {
      throw new InvalidArgumentError(`hardlink "${entry.name}": target "${entry.linkname}" escapes the layer root`);
    }
    if (components.length === 0) throw new InvalidArgumentError(`hardlink "${entry.name}" points at the layer root`);
    const { existing, missing } = resolveDir(this.options.root, components.slice(0, -1), entry.name);
    const target = join(this.options.root, ...existing, components[components.length - 1]!);
    const stat = missing.length === 0 ? lstatIfExists(target) : undefined;
    if (!stat) throw new NotFoundError(`hardlink "${entry.name}": target "${entry.linkname}" does not exist in the layer root`);
    if (stat.isDirectory()) throw new InvalidArgumentError(`hardlink "${entry.name}": target "${entry.linkname}" is a directory`);
    return target;
  }

  /** Owner, xattrs, mode and times of a file whose data is written. */
  private finishFile({ fd, path, parent, entry }: OpenFile): void {
    const mode = entry.mode & 0o7777;
    // Most files are root's, in directories this apply made: they already have the right owner and mode.
    const ownerRight = entry.uid === 0 && entry.gid === 0 && this.createdDirs.get(parent) === false;
    if (isRoot && !ownerRight) fchownSync(fd, entry.uid, entry.gid);
    this.setXattrs(path, entry);
    if ((mode & ~0o777) !== 0 || (mode & UMASK) !== 0 || !ownerRight) fchmodSync(fd, mode);
    futimesSync(fd, Math.max(entry.atime ?? 0, entry.mtime), entry.mtime);
  }

  /** Owner, xattrs, mode and times of a non-regular entry (in that order: chown clears setuid). */
  private finishAttributes(path: string, entry: TarEntry): void {
    if (isRoot) lchownSync(path, entry.uid, entry.gid);
    this.setXattrs(path, entry);
    if (entry.type === 'symlink') {
      lutimesSync(path, Math.max(entry.atime ?? 0, entry.mtime), entry.mtime);
      return;
    }
    chmodSync(path, entry.mode & 0o7777);
    if (entry.type !== 'directory') lutimesSync(path, Math.max(entry.atime ?? 0, entry.mtime), entry.mtime);
  }

  private setXattrs(path: string, entry: TarEntry): void {
    for (const [name, value] of entry.xattrs) {
      if (isPrivateXattr(name)) {
        this.options.warn?.({ entry: entry.name, xattr: name }, 'ignoring private xattr in layer');
        continue;
      }
      this.trySetXattr(path, name, value, entry.name);
    }
  }

  private trySetXattr(path: string, name: string, value: Buffer, entryName: string): void {
    try {
      setXattr(path, name, value);
    } catch (err) {
      const errno = xattrErrno(err);
      // As containerd: a filesystem without xattr support (or user.* on a symlink) only warrants a warning.
      if (errno !== ERRNO_ENOTSUP && errno !== ERRNO_EPERM) throw err;
      this.options.warn?.({ entry: entryName, xattr: name, err: (err as Error).message }, 'ignoring xattr the filesystem does not support');
    }
  }
}

/** The directory `components` below `lower` if every component is a real directory. */
function realDirIn(lower: string, components: string[]): Stats | 'absent' | 'replaced' {
  let stat: Stats | undefined;
  for (let i = 1; i <= components.length; i++) {
    stat = lstatIfExists(join(lower, ...components.slice(0, i)));
    if (!stat) return 'absent';
    if (!stat.isDirectory()) return 'replaced';
  }
  return stat ?? 'absent';
}

/**
 * Applies a tar stream onto `options.root`. `observe` sees every byte of the
 * stream, to its very end (also past the end-of-archive blocks), so a digest
 * taken there covers the whole layer.
 */
export async function applyTar(tar: ByteStream, options: ApplyTarOptions, observe: (chunk: Buffer) => void = () => undefined): Promise<TarApplier['stats']> {
  const applier = new TarApplier(options);
  const reader = new TarReader(applier);
  try {
    for await (const chunk of tar) {
      observe(chunk);
      reader.push(chunk);
    }
    reader.end();
  } catch (err) {
    applier.abort();
    throw err;
  }
  applier.finish();
  return applier.stats;
}
