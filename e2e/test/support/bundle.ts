import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runOk, unpackTestImage, type TestImage } from '@boxd/test-utils';

interface RuntimeSpec {
  process: { terminal: boolean; args: string[]; oomScoreAdj?: number };
  hostname?: string;
  [key: string]: unknown;
}

/**
 * An OCI bundle at dir: rootfs unpacked from the test image, config.json from `runc spec`
 * with no terminal and the given args. oomScoreAdj stays unset: this machine has no
 * CAP_SYS_RESOURCE, so the container inherits its parent's score rather than lowering it.
 */
export async function makeBundle(image: TestImage, dir: string, args: string[]): Promise<string> {
  await unpackTestImage(image, dir);
  await rm(join(dir, 'config.json'));
  await runOk('runc', ['spec', '--bundle', dir]);
  const specPath = join(dir, 'config.json');
  const spec = JSON.parse(await readFile(specPath, 'utf8')) as RuntimeSpec;
  spec.process.terminal = false;
  spec.process.args = args;
  delete spec.process.oomScoreAdj;
  spec.hostname = 'shimtest';
  await writeFile(specPath, JSON.stringify(spec, null, 2));
  return dir;
}
