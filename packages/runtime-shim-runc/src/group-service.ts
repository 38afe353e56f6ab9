/**
 * `boxd.shim.v1.Group`: the core asks a running shim to take a new task, instead of
 * running `start` (a process per task). The shim applies the same grouping rule `start`
 * does and takes only tasks that rule would send to its own socket.
 */
import { isAbsolute } from 'node:path';
import { boxdShim, FailedPreconditionError, InvalidArgumentError, SHIM_JOIN_DECLINED, SHIM_JOIN_HEADER, taskV2, type ServiceImplementation } from '@boxd/api';
import { groupingPolicy, groupKey, shimSocketPath } from './grouping.js';
import { annotationsOf, writeAddressFile } from './start.js';

export interface GroupScope {
  /** containerd's (the core's) address, as `start -address` got it. */
  address: string;
  namespace: string;
  /** The socket this shim serves on. */
  socketPath: string;
  /** False once the shim is on its way out: joining then would strand the task. */
  accepting(): boolean;
  /** Called for each task taken, before answering, so an idle exit waits for its Create. */
  joined(id: string): void;
}

const DECLINED = { joined: false, address: '', joinsOnCreate: true };

/**
 * Whether task `id` of `namespace` (bundle `bundle`) belongs to this shim by the rule
 * `start` applies; if so it is taken: recorded as joined and the bundle's address file
 * written, as `start` would. The shim's address when taken.
 */
export function admitTask(scope: GroupScope, req: { id: string; namespace: string; bundle: string }): string | undefined {
  if (!req.id) throw new InvalidArgumentError('join: id is required');
  if (!isAbsolute(req.bundle)) throw new InvalidArgumentError(`join: bundle ${JSON.stringify(req.bundle)} is not an absolute path`);
  if (req.namespace !== scope.namespace || !scope.accepting()) return undefined;
  const policy = groupingPolicy();
  const annotations = policy === 'per-sandbox' ? annotationsOf(req.bundle) : {};
  if (shimSocketPath(scope.address, req.namespace, groupKey(policy, req.id, annotations)) !== scope.socketPath) return undefined;
  scope.joined(req.id);
  const address = `unix://${scope.socketPath}`;
  writeAddressFile(req.bundle, address);
  return address;
}

export function groupService(scope: GroupScope): ServiceImplementation<typeof boxdShim.GroupService> {
  return {
    Join: async (req) => {
      const address = admitTask(scope, req);
      return address ? { joined: true, address, joinsOnCreate: true } : DECLINED;
    },
  };
}

/**
 * Task.Create that also joins (header SHIM_JOIN_HEADER): one call where Join then
 * Create took two. Without the header, Create as ever.
 */
export function joiningCreate(scope: GroupScope, create: NonNullable<ServiceImplementation<typeof taskV2.TaskService>['Create']>): typeof create {
  return (req, ctx) => {
    const namespace = ctx.metadata[SHIM_JOIN_HEADER]?.[0];
    if (namespace !== undefined && !admitTask(scope, { id: req.id, namespace, bundle: req.bundle })) {
      throw new FailedPreconditionError(SHIM_JOIN_DECLINED);
    }
    return create(req, ctx);
  };
}
