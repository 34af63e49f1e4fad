/**
 * What the corpus records per unit, and the per-package / total aggregation of the paper's
 * table. Pure: unit-tested in test/corpus-table.test.ts.
 */

/**
 * kpatchable: text-only and create-diff-object produced a patch for every changed object.
 * text-only: only code changed, but some object could not be patched (reasons say why).
 * not-text-only: the patch changes data (or adds/removes objects) — cannot be live-patched as text.
 * no-code: the patch changes no compiled object (documentation, packaging, tests, build-only).
 * failed: the unit could not be classified (does not apply, build failed, tool error).
 * not-measurable: cannot be measured for a reason that is not a limit of ours (no tree
 * without it builds: no running binary exists without it); counted in its own row, outside the ratios.
 * pending: not classified yet (a --no-builds run that found no result for it); counted in
 * its own row, outside the ratios, so an unfinished run is visible as such.
 */
export type Verdict = 'kpatchable' | 'text-only' | 'not-text-only' | 'no-code' | 'not-measurable' | 'failed' | 'pending';

/** A unit's verdict with its reasons, however it was classified. */
export interface UnitVerdict {
  readonly verdict: Verdict;
  /** One line: the first precise reason (for the table), or why it failed. */
  readonly reason: string;
  /** Every reason the pipeline gave (object: symbol: what). */
  readonly reasons: readonly string[];
  /** Objects that differed after the patched build. */
  readonly objects: number;
  /**
   * Live-patchable with new data (corpus/README.md): kpatch-able, or not text-only only because
   * it adds variables create-diff-object carries in the patch. Absent in results classified
   * before create-diff-object had --new-data (not measured: the table shows '–').
   */
  readonly liveWithNewData?: boolean;
  /**
   * kpatch-able verdicts: the unit's bundle checked against the binary of that build by the
   * loader's dry run (confirm.ts). Absent where no binary was linked (compile-only mode).
   */
  readonly confirmation?: { readonly confirmed: boolean; readonly binaries: readonly string[]; readonly how: string };
  /**
   * The verdict per binary it changes (services.ts); the unit's verdict counts only the
   * long-running ones. Absent when no object changed or the package names no services.
   */
  readonly perBinary?: readonly { readonly binary: string; readonly longRunning: boolean; readonly verdict: Verdict; readonly reason: string }[];
}

export interface UnitResult extends UnitVerdict {
  readonly package: string;
  readonly unit: string;
  readonly cves: readonly string[];
  readonly views: readonly string[];
  /**
   * Where the unit was applied: 'series-prefix' — on the tree with series patches
   * [0, appliedAt); 'series-without-unit' — last, on the whole series without it;
   * 'series-without-update' — on the whole series without the update's units.
   */
  readonly base: 'series-prefix' | 'series-without-unit' | 'series-without-update';
  /** Number of series patches in the tree the unit was applied to. */
  readonly appliedAt: number;
  /** Wall time of classifying this unit (0 when taken from the cache of an earlier run). */
  readonly seconds: number;
  /** Hash of the inputs (patch content, base version, tool versions): resumability key. */
  readonly key: string;
  /** The same hash without the tool versions (lets --no-builds find older results). */
  readonly inputs?: string;
  /** How it was classified when not by the full pipeline (the compile-only corpus mode). */
  readonly mode?: string;
  /** Taken by --no-builds from a run with other tool versions. */
  readonly earlierTools?: boolean;
}

export interface Count {
  readonly all: number;
  readonly cve: number;
}

export interface PackageRow {
  readonly package: string;
  readonly baseVersion: string;
  readonly units: Count;
  readonly noCode: Count;
  /** Units that change compiled code or could not be classified (failed counts here, as "no"). */
  readonly code: Count;
  readonly textOnly: Count;
  readonly kpatchable: Count;
  /** Live-patchable with new data (kpatch-able ones included). */
  readonly liveWithNewData: Count;
  /** kpatch-able units whose bundle passed the loader's dry run against the binary. */
  readonly confirmed: Count;
  /** Code units whose results say whether they are live-patchable with new data (measured). */
  readonly newDataMeasured: Count;
  readonly failed: Count;
  readonly notMeasurable: Count;
  readonly pending: Count;
  /** Seconds spent on this package in the run that produced the results (builds included). */
  readonly seconds: number;
}

function count(results: readonly UnitResult[], keep: (r: UnitResult) => boolean): Count {
  const hit = results.filter(keep);
  return { all: hit.length, cve: hit.filter((r) => r.cves.length > 0).length };
}

export function isTextOnly(v: Verdict): boolean {
  return v === 'kpatchable' || v === 'text-only';
}

export function packageRow(pkg: string, baseVersion: string, results: readonly UnitResult[], seconds: number): PackageRow {
  const mine = results.filter((r) => r.package === pkg);
  return {
    package: pkg,
    baseVersion,
    units: count(mine, () => true),
    noCode: count(mine, (r) => r.verdict === 'no-code'),
    code: count(mine, (r) => r.verdict !== 'no-code' && r.verdict !== 'pending' && r.verdict !== 'not-measurable'),
    textOnly: count(mine, (r) => isTextOnly(r.verdict)),
    kpatchable: count(mine, (r) => r.verdict === 'kpatchable'),
    liveWithNewData: count(mine, (r) => r.verdict === 'kpatchable' || (r.verdict === 'not-text-only' && r.liveWithNewData === true)),
    confirmed: count(mine, (r) => r.verdict === 'kpatchable' && r.confirmation?.confirmed === true),
    newDataMeasured: count(mine, (r) => r.verdict !== 'no-code' && r.verdict !== 'pending' && r.verdict !== 'not-measurable' && r.verdict !== 'failed' && (r.verdict === 'kpatchable' || r.liveWithNewData !== undefined)),
    failed: count(mine, (r) => r.verdict === 'failed'),
    notMeasurable: count(mine, (r) => r.verdict === 'not-measurable'),
    pending: count(mine, (r) => r.verdict === 'pending'),
    seconds,
  };
}

function add(a: Count, b: Count): Count {
  return { all: a.all + b.all, cve: a.cve + b.cve };
}

export function totalRow(rows: readonly PackageRow[]): PackageRow {
  const zero: Count = { all: 0, cve: 0 };
  return rows.reduce<PackageRow>(
    (t, r) => ({
      package: 'total',
      baseVersion: '',
      units: add(t.units, r.units),
      noCode: add(t.noCode, r.noCode),
      code: add(t.code, r.code),
      textOnly: add(t.textOnly, r.textOnly),
      kpatchable: add(t.kpatchable, r.kpatchable),
      liveWithNewData: add(t.liveWithNewData, r.liveWithNewData),
      newDataMeasured: add(t.newDataMeasured, r.newDataMeasured),
      confirmed: add(t.confirmed, r.confirmed),
      failed: add(t.failed, r.failed),
      notMeasurable: add(t.notMeasurable, r.notMeasurable),
      pending: add(t.pending, r.pending),
      seconds: t.seconds + r.seconds,
    }),
    { package: 'total', baseVersion: '', units: zero, noCode: zero, code: zero, textOnly: zero, kpatchable: zero, liveWithNewData: zero, newDataMeasured: zero, confirmed: zero, failed: zero, notMeasurable: zero, pending: zero, seconds: 0 },
  );
}

/** Percentage rounded to an integer, or null when the denominator is 0 (shown as '–'). */
export function percent(part: number, whole: number): number | null {
  return whole === 0 ? null : Math.round((100 * part) / whole);
}

/** The paper's two ratios: text-only among code patches, kpatch-able among text-only ones. */
export interface Ratios {
  readonly textOnly: { all: number | null; cve: number | null };
  readonly kpatchableOfTextOnly: { all: number | null; cve: number | null };
  readonly kpatchableOfCode: { all: number | null; cve: number | null };
  /** Live-patchable with new data among the code patches; null where not every code unit was measured with --new-data. */
  readonly liveWithNewDataOfCode: { all: number | null; cve: number | null };
}

export function ratios(row: PackageRow): Ratios {
  return {
    textOnly: { all: percent(row.textOnly.all, row.code.all), cve: percent(row.textOnly.cve, row.code.cve) },
    kpatchableOfTextOnly: { all: percent(row.kpatchable.all, row.textOnly.all), cve: percent(row.kpatchable.cve, row.textOnly.cve) },
    kpatchableOfCode: { all: percent(row.kpatchable.all, row.code.all), cve: percent(row.kpatchable.cve, row.code.cve) },
    liveWithNewDataOfCode: {
      all: (row.newDataMeasured?.all ?? 0) === row.code.all - row.failed.all ? percent(row.liveWithNewData?.all ?? 0, row.code.all) : null,
      cve: (row.newDataMeasured?.cve ?? 0) === row.code.cve - row.failed.cve ? percent(row.liveWithNewData?.cve ?? 0, row.code.cve) : null,
    },
  };
}

/** Reasons for "no", counted: the first reason's kind, so the next improvement is visible. */
export function reasonHistogram(results: readonly UnitResult[]): { reason: string; units: number }[] {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (r.verdict === 'kpatchable' || r.verdict === 'no-code' || r.verdict === 'pending') continue;
    const key = `${r.verdict}: ${reasonKind(r.reason)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].map(([reason, units]) => ({ reason, units })).sort((a, b) => b.units - a.units || a.reason.localeCompare(b.reason));
}

/**
 * A reason without its object and symbol names: 'proto_text.o: process_command: changed .data' → 'changed .data'.
 * The number GCC gives a function-local static ('_xrefdata.194', one per log call in FRR) and
 * a byte count in parentheses are left out too: the same reason in two files or two units is
 * one kind.
 */
export function reasonKind(reason: string): string {
  const parts = withoutCachePaths(reason).split(': ');
  const kind = parts.length > 2 ? parts.slice(2).join(': ') : parts[parts.length - 1] ?? reason;
  return kind
    .replace(/\b(data object|function) ([\w$]+)\.\d+\b/g, '$1 $2.N')
    .replace(/\(\d+ bytes\)/g, '(N bytes)')
    .replace(/\s+/g, ' ')
    .slice(0, 120);
}

/**
 * A reason with the cache's build folders left out: "does not resolve in
 * /var/cache/wfpatch/wfbuild/orig/<key>/linked/src/auth/.libs/auth" → "… in src/auth/.libs/auth"
 * (tree-relative, as the rest of the table names binaries).
 */
export function withoutCachePaths(reason: string): string {
  return reason.replace(/\/\S*?\/wfbuild\/orig\/[0-9a-f]+\/(?:linked|tree)\//g, '');
}
