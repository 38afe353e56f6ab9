/** Unix socket addresses: `unix://` prefixes, stale socket files, permissions. */

/** `unix:///run/x.sock` and `unix:/run/x.sock` -> `/run/x.sock`; a leading NUL names an abstract socket. */
export function socketPath(address: string): string {
  if (address.startsWith('unix://')) return address.slice('unix://'.length);
  if (address.startsWith('unix:')) return address.slice('unix:'.length);
  return address;
}

export function isAbstract(path: string): boolean {
  return path.startsWith('\0');
}

export { prepareSocketPath, applySocketMode, type ListenOptions } from '@boxd/api';
