import { validateLabels } from '@boxd/api';

/**
 * Labels as stored: validated (INVALID_ARGUMENT when too large), and without
 * empty values, which containerd treats as "no label" and never stores.
 */
export function storedLabels(labels: Readonly<Record<string, string>> | null | undefined): Record<string, string> {
  validateLabels(labels);
  return Object.fromEntries(Object.entries(labels ?? {}).filter(([, value]) => value !== ''));
}
