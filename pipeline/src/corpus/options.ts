/** The corpus command's option values. */
import { UserError } from '../cli/errors.ts';
import { intOption } from '../cli/options.ts';
import { corpusPackages } from './manifest.ts';
import type { View } from './placement.ts';

export function parsePackages(value: string | undefined): string[] {
  if (value === undefined) return [...corpusPackages];
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UserError('--packages needs at least one package name');
  for (const name of names) {
    if (!(corpusPackages as readonly string[]).includes(name)) {
      throw new UserError(`unknown corpus package '${name}' (known: ${corpusPackages.join(', ')})`);
    }
  }
  return names;
}

export function parseJobs(value: string | undefined): number {
  return intOption('jobs', value, 1, 64) ?? 2;
}

export function parseView(value: string | undefined): View {
  if (value === undefined) return 'corpus';
  if (value === 'corpus' || value === 'update' || value === 'series') return value;
  throw new UserError(`--view ${value}: one of corpus, update, series`);
}

/** --units ID,…: unit ids as the manifests name them (checked against them in run.ts). */
export function parseUnits(value: string): ReadonlySet<string> {
  const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) throw new UserError('--units needs at least one unit id');
  return new Set(ids);
}
