/** Which units a corpus run classifies, and on which base trees (corpus/README.md). */
import type { Manifest } from './manifest.ts';
import type { CorpusUnit } from './units.ts';

export type View = 'corpus' | 'update' | 'series';

/**
 * Which units a run classifies (corpus/README.md): 'series' — every unit of the series walk;
 * 'update' — the units a bookworm update added; 'corpus' (default) — the update units where the
 * package has any, else its series walk (Debian took a new upstream release, or no update).
 */
export function selectUnits(manifest: Manifest, view: View): CorpusUnit[] {
  const update = manifest.units.filter((u) => u.views.includes('update'));
  if (view === 'series') return [...manifest.units];
  if (view === 'update') return update;
  return update.length > 0 ? update : [...manifest.units];
}

/**
 * Where a unit is applied. Series walk: on top of every patch before it. Update view: every
 * update unit on the same base (the tree before the first update unit — the version users run),
 * as if each fix had arrived alone, so the package needs one original build; a unit that does
 * not apply alone there falls back to its series position (the caller checks).
 */
export function preferredBase(unit: CorpusUnit, selected: readonly CorpusUnit[], usesUpdateView: boolean): number {
  if (!usesUpdateView) return unit.start;
  return Math.min(...selected.map((u) => u.start));
}

/** A base tree a unit can be applied to (see corpus/README.md, "Where a unit is applied"). */
export type Placement =
  | { kind: 'series-prefix'; at: number }
  | { kind: 'series-without-unit' }
  /** The whole series without the update's units (ranges [start, end) of series patches). */
  | { kind: 'series-without-update'; without: readonly (readonly [number, number])[] };

/**
 * The update view's shared base. Usually the tree before the first update unit; but where
 * Debian keeps an older patch after the update's (exim4: 90_localscan_dlopen.dpatch after
 * 76…84, and debian/rules needs it), the version users run is the series without the update's
 * units — every other patch applied. Undefined outside the update view.
 */
export function sharedBase(all: readonly CorpusUnit[], selected: readonly CorpusUnit[], usesUpdateView: boolean): Placement | undefined {
  if (!usesUpdateView || selected.length === 0) return undefined;
  const first = Math.min(...selected.map((u) => u.start));
  const chosen = new Set(selected.map((u) => u.id));
  const keptAfter = all.some((u) => u.start > first && !chosen.has(u.id));
  if (!keptAfter) return { kind: 'series-prefix', at: first };
  const ranges: [number, number][] = [];
  for (const u of [...selected].sort((a, b) => a.start - b.start)) {
    const end = u.start + u.patches.length;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === u.start) last[1] = end;
    else ranges.push([u.start, end]);
  }
  return { kind: 'series-without-update', without: ranges };
}

/** What a placement contributes to a result's key (series-prefix keeps its number, as before). */
export function placementKey(p: Placement): number | string {
  if (p.kind === 'series-prefix') return p.at;
  if (p.kind === 'series-without-unit') return -1;
  return `without:${p.without.map(([a, b]) => `${a}-${b}`).join(',')}`;
}

/**
 * The bases to try, in order: the preferred one (shared base in the update view, the unit's
 * series position otherwise), then its series position, then last on the whole series without
 * it — for a unit before a patch Debian's build needs (apache2's layout comes from
 * fhs_compliance.patch, so no tree before it builds).
 */
export function placementsFor(unit: CorpusUnit, preferred: number | Placement, seriesLength: number): Placement[] {
  const first: Placement = typeof preferred === 'number' ? { kind: 'series-prefix', at: preferred } : preferred;
  const list: Placement[] = [first];
  if (first.kind === 'series-without-update') {
    // Its own position on the version users run: the update's units before it applied, the
    // older patches Debian keeps after the update too (exim4's debian/rules needs them).
    const from = first.without.filter(([, b]) => b > unit.start).map(([a, b]) => [Math.max(a, unit.start), b] as const);
    if (from.length > 0 && from[0]![0] > first.without[0]![0]) list.push({ kind: 'series-without-update', without: from });
    else if (from.length === 0) list.push({ kind: 'series-prefix', at: unit.start });
  } else if (!(first.kind === 'series-prefix' && first.at === unit.start)) list.push({ kind: 'series-prefix', at: unit.start });
  if (unit.start + unit.patches.length < seriesLength) list.push({ kind: 'series-without-unit' });
  // Last: the patches before it alone. When later patches need the unit (openssh's
  // selinux-role.patch needs gssapi.patch), no series without it applies; this tree does.
  if (!list.some((p) => p.kind === 'series-prefix' && p.at === unit.start)) list.push({ kind: 'series-prefix', at: unit.start });
  return list;
}

export function describePlacement(p: Placement): string {
  if (p.kind === 'series-prefix') return `applied after ${p.at} series patches`;
  if (p.kind === 'series-without-unit') return 'applied last, on the whole series without it';
  return `applied on the series without the update's patches ${p.without.map(([a, b]) => (b - a === 1 ? `${b}` : `${a + 1}–${b}`)).join(', ')}`;
}

/** Whether the placement is a base shared by other units (not the unit's own series position). */
export function isSharedBase(p: Placement, unit: Pick<CorpusUnit, 'start'>): boolean {
  if (p.kind === 'series-without-update') return p.without[0]![0] < unit.start;
  return p.kind === 'series-prefix' && p.at !== unit.start;
}
