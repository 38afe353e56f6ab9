import { readFileSync } from 'node:fs';
import { version, type ServiceImplementation } from '@boxd/api';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const BOXD_VERSION = pkg.version;

export function versionService(): ServiceImplementation<typeof version.VersionService> {
  return { Version: () => ({ version: `${pkg.version}+boxd`, revision: process.env.BOXD_REVISION ?? 'dev' }) };
}
