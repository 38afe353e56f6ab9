/** The suite's view of the endpoint under test: Snapshots calls with the snapshotter name and namespace filled in. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Long from 'long';
import { LEASE_HEADER_GRPC, codeName, errorCode, snapshots, type CallOptions, type ServiceClient, type types } from '@boxd/api';
import { unmountAll, withMounts } from './mount.js';

export type SnapshotsClient = ServiceClient<typeof snapshots.SnapshotsService>;

export interface SnapshotTree {
  bottom: string;
  top: string;
  active: string;
  view: string;
}

export interface UsageNumbers {
  size: bigint;
  inodes: bigint;
}

export class SnapshotHarness {
  /** Every key this run creates starts with it, so runs never collide and List can be narrowed to them. */
  readonly prefix = `cts-${randomBytes(4).toString('hex')}-`;
  private readonly call: CallOptions;
  private mountRoot?: string;
  private mountCount = 0;
  private readonly mounted = new Set<string>();

  constructor(
    readonly client: SnapshotsClient,
    readonly snapshotter: string,
    headers: { namespace?: string; lease?: string } = {},
  ) {
    this.call = {};
    if (headers.namespace) this.call.namespace = headers.namespace;
    if (headers.lease) this.call.metadata = { [LEASE_HEADER_GRPC]: headers.lease };
  }

  key(name: string): string {
    return this.prefix + name;
  }

  async prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<types.Mount[]> {
    return (await this.client.Prepare({ snapshotter: this.snapshotter, key, parent, labels }, this.call)).mounts;
  }

  async view(key: string, parent = '', labels: Record<string, string> = {}): Promise<types.Mount[]> {
    return (await this.client.View({ snapshotter: this.snapshotter, key, parent, labels }, this.call)).mounts;
  }

  async mounts(key: string): Promise<types.Mount[]> {
    return (await this.client.Mounts({ snapshotter: this.snapshotter, key }, this.call)).mounts;
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.client.Commit({ snapshotter: this.snapshotter, name, key, labels }, this.call);
  }

  async remove(key: string): Promise<void> {
    await this.client.Remove({ snapshotter: this.snapshotter, key }, this.call);
  }

  async stat(key: string): Promise<snapshots.Info> {
    const { info } = await this.client.Stat({ snapshotter: this.snapshotter, key }, this.call);
    if (!info) throw new Error(`Stat(${key}) answered without info`);
    return info;
  }

  async update(key: string, labels: Record<string, string>, paths: string[] = []): Promise<snapshots.Info> {
    const { info } = await this.client.Update(
      { snapshotter: this.snapshotter, info: { name: key, labels }, updateMask: { paths } },
      this.call,
    );
    if (!info) throw new Error(`Update(${key}) answered without info`);
    return info;
  }

  /** All snapshots matching `filters`, with the number of response messages they came in. */
  async list(filters: string[] = []): Promise<{ infos: snapshots.Info[]; messages: number }> {
    const infos: snapshots.Info[] = [];
    let messages = 0;
    for await (const res of this.client.List({ snapshotter: this.snapshotter, filters }, this.call)) {
      messages++;
      infos.push(...res.info);
    }
    return { infos, messages };
  }

  /**
   * Names of this run's snapshots whose name continues with `scope`, matching
   * any of `filters` (each ANDed with the scope; all when none), sorted.
   * `scope` must hold no regexp metacharacters.
   */
  async names(scope: string, ...filters: string[]): Promise<string[]> {
    const own = `name~=^${this.prefix}${scope}`;
    const { infos } = await this.list(filters.length > 0 ? filters.map((f) => `${own},${f}`) : [own]);
    return infos.map((i) => i.name).sort();
  }

  async usage(key: string): Promise<UsageNumbers> {
    const res = await this.client.Usage({ snapshotter: this.snapshotter, key }, this.call);
    return { size: toBigInt(res.size), inodes: toBigInt(res.inodes) };
  }

  async cleanup(): Promise<void> {
    await this.client.Cleanup({ snapshotter: this.snapshotter }, this.call);
  }

  /** Cleanup, held to what the endpoint declares: success, or UNIMPLEMENTED when it has no Cleanup. */
  async expectCleanup(implemented: boolean): Promise<void> {
    const code = await codeOf(this.cleanup());
    const expected = implemented ? 'resolved' : 'UNIMPLEMENTED';
    if (code !== expected) throw new Error(`Cleanup answered ${code}, expected ${expected}`);
  }

  /** Prepares `key` on `parent`, lets `write` fill it through its mounts, and commits it as `name`. */
  async layer(name: string, parent: string, write?: (root: string) => Promise<void>, labels?: Record<string, string>): Promise<void> {
    const key = `${name}-active`;
    const mounts = await this.prepare(key, parent);
    if (write) await this.withMounted(mounts, write);
    await this.commit(name, key, labels);
  }

  /** Committed `bottom` <- committed `top`, with an active snapshot and a view on `top`; keys under `scope`. */
  async tree(scope: string, labels: { bottom?: Record<string, string>; active?: Record<string, string> } = {}): Promise<SnapshotTree> {
    const t = { bottom: this.key(`${scope}bottom`), top: this.key(`${scope}top`), active: this.key(`${scope}active`), view: this.key(`${scope}view`) };
    await this.layer(t.bottom, '', undefined, labels.bottom);
    await this.layer(t.top, t.bottom);
    await this.prepare(t.active, t.top, labels.active);
    await this.view(t.view, t.top);
    return t;
  }

  /** Mounts `mounts` on a fresh directory for the duration of `fn`. */
  async withMounted<T>(mounts: readonly types.Mount[], fn: (root: string) => Promise<T>): Promise<T> {
    this.mountRoot ??= await mkdtemp(join(tmpdir(), 'bx-m-'));
    const target = join(this.mountRoot, String(this.mountCount++));
    await mkdir(target);
    this.mounted.add(target);
    try {
      return await withMounts(mounts, target, fn);
    } finally {
      this.mounted.delete(target);
    }
  }

  /**
   * Unmounts whatever a failed test left mounted and removes the (empty)
   * mount directories. Never recursive: a directory still mounted on must not
   * have the snapshot's files deleted through it.
   */
  async dispose(): Promise<void> {
    for (const target of this.mounted) await unmountAll(target).catch(() => undefined);
    if (!this.mountRoot) return;
    for (const name of await readdir(this.mountRoot)) await rmdir(join(this.mountRoot, name)).catch(() => undefined);
    await rmdir(this.mountRoot).catch(() => undefined);
  }
}

function toBigInt(value: Long | number | string): bigint {
  return BigInt(Long.fromValue(value as Long).toString());
}

/** The status code name of a rejected call (`NOT_FOUND`, ...), or `resolved` if it did not fail. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return codeName(errorCode(err));
  }
}
