/**
 * `boxd.shim.v1.Group`: the core asks a running shim to take a new task, instead of
 * running `start` (a process per task). The shim applies the same grouping rule `start`
 * does and takes only tasks that rule would send to its own socket.
 */
import { isAbsolute } from 'node:path';
import { boxdShim, InvalidArgumentError, type ServiceImplementation } from '@boxd/api';
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

const DECLINED = { joined: false, address: '' };

export function groupService(scope: GroupScope): ServiceImplementation<typeof boxdShim.GroupService> {
  return {
    Join: async (req) => {
      if (!req.id) throw new InvalidArgumentError('join: id is required');
      if (!isAbsolute(req.bundle)) throw new InvalidArgumentError(`join: bundle ${JSON.stringify(req.bundle)} is not an absolute path`);
      if (req.namespace !== scope.namespace || !scope.accepting()) return DECLINED;
      const policy = groupingPolicy();
      const annotations = policy === 'per-sandbox' ? annotationsOf(req.bundle) : {};
      if (shimSocketPath(scope.address, req.namespace, groupKey(policy, req.id, annotations)) !== scope.socketPath) return DECLINED;
      scope.joined(req.id);
      const address = `unix://${scope.socketPath}`;
      writeAddressFile(req.bundle, address);
      return { joined: true, address };
    },
  };
}
