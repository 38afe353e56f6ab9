import { readFile } from 'node:fs/promises';
import { parse } from 'smol-toml';
import { InvalidArgumentError } from '@boxd/api';

export type PluginConfig = Record<string, unknown>;

/**
 * A plugin's config: the `[name]` table of the file when it has one (so one
 * file can serve several plugins), otherwise the whole file.
 */
export async function loadConfig(path: string | undefined, name: string): Promise<PluginConfig> {
  if (!path) return {};
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config ${path}: ${(err as Error).message}`);
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidArgumentError(`config ${path} is not valid TOML: ${(err as Error).message}`);
  }
  const section = doc[name];
  return section && typeof section === 'object' && !Array.isArray(section) ? (section as PluginConfig) : doc;
}
