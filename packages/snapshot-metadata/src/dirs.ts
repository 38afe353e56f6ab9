/**
 * The snapshot directories: `<root>/snapshots/<id>`.
 *
 * Short numeric ids keep paths short and alike, which matters for overlay
 * mounts of deep chains: mounters (containerd's mount code among them) chdir
 * into the common parent `<root>/snapshots/` and pass lowerdirs relative to
 * it, to stay under the kernel's one-page limit for mount options.
 *
 * New snapshots are built in a `new-*` directory and renamed to their id
 * inside the transaction that records them. Whatever else shows up here (a
 * crash between rename and commit, a removal that failed) is garbage for
 * `unreferenced` to find and Cleanup to delete.
 */
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export class SnapshotDirs {
  readonly base: string;
  /** Directories being prepared right now; never garbage. */
  private readonly building = new Set<string>();

  constructor(root: string) {
    this.base = join(root, 'snapshots');
  }

  async init(): Promise<void> {
    await mkdir(this.base, { recursive: true, mode: 0o700 });
  }

  dir(id: number): string {
    return join(this.base, String(id));
  }

  /** A fresh directory to build a snapshot in; `finish` it whether or not it was placed. */
  startBuilding(): string {
    // Registered before it exists, so a concurrent Cleanup never sees it unprotected.
    const dir = join(this.base, `new-${randomBytes(6).toString('hex')}`);
    this.building.add(dir);
    try {
      // Synchronous: one mkdir is cheaper than a trip through libuv's thread pool.
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      this.building.delete(dir);
      throw err;
    }
    return dir;
  }

  isFree(id: number): boolean {
    return !existsSync(this.dir(id));
  }

  /** Synchronous so it can run inside a write transaction. */
  place(building: string, id: number): void {
    renameSync(building, this.dir(id));
  }

  /** Stops protecting a build directory and removes it if it was not placed. */
  async finish(building: string): Promise<void> {
    this.building.delete(building);
    // Placed (the usual case): it is gone under this name already.
    if (existsSync(building)) await rm(building, { recursive: true, force: true });
  }

  async remove(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * Entries that belong to no snapshot and no build in progress. The ids are
   * read after the directory listing: a snapshot placed in between is then
   * known, and one placed later is not listed.
   */
  async unreferenced(referencedIds: () => ReadonlySet<number>): Promise<string[]> {
    const names = await readdir(this.base);
    const referenced = referencedIds();
    const garbage: string[] = [];
    for (const name of names) {
      const path = join(this.base, name);
      const id = /^[1-9][0-9]*$/.test(name) ? Number(name) : undefined;
      if (id !== undefined && referenced.has(id)) continue;
      if (this.building.has(path)) continue;
      garbage.push(path);
    }
    return garbage;
  }
}
