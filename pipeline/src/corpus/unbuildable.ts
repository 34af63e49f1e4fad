/**
 * A unit without which no tree builds: Debian's build needs it (openldap's contrib-makefiles
 * makes the contrib modules build at all; apache2's Debian layout). Every base tree tried — the
 * tree before it, the whole series without it — fails its original build, so there is no
 * running binary without the unit that a live patch could update. Classified from what it
 * changes, with that stated: a unit that touches only build files is "not measurable" for that
 * reason (not a limit of ours); one that touches compiled code stays failed (we cannot tell).
 * Pure: tested in test/corpus-table.test.ts.
 */
import type { FileKind } from '../triage/index.ts';
import type { UnitVerdict } from './results.ts';

export interface TouchedFile {
  readonly path: string;
  readonly kind: FileKind;
}

export function unbuildableVerdict(files: readonly TouchedFile[], buildFailure: string): UnitVerdict | null {
  if (files.length === 0 || files.some((f) => f.kind !== 'build-system' && f.kind !== 'docs' && f.kind !== 'other' && f.kind !== 'debian-packaging')) return null;
  const build = files.filter((f) => f.kind === 'build-system').map((f) => f.path);
  if (build.length === 0) return null;
  const shown = build.length > 4 ? `${build.slice(0, 4).join(', ')} and ${build.length - 4} more` : build.join(', ');
  const reason = `classified from what it changes: no tree without this unit builds (${buildFailure.slice(0, 160)}), so no running binary exists without it to patch; it changes only build files (${shown})`;
  return { verdict: 'not-measurable', reason, reasons: [reason, buildFailure], objects: 0 };
}
