/**
 * Markdown rendering of the corpus results: the paper's table (columns per package, as in
 * ../shared/docs/architecture.md), the ratios, the reasons for "no" and every unit's verdict.
 * Pure; shared with `wfbuild report` if it wants the same table.
 */
import { ratios, reasonHistogram, withoutCachePaths, totalRow, type Count, type PackageRow, type UnitResult } from './results.ts';

function cell(c: Count): string {
  return `${c.all} (${c.cve})`;
}

function pct(value: number | null): string {
  return value === null ? '–' : `${value}%`;
}

function escape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** Every classified code unit says whether it is live-patchable with new data (else the count is a lower bound). */
function measuredAll(r: PackageRow): boolean {
  return r.newDataMeasured.all === r.code.all - r.failed.all;
}

/** The paper's table: one column per package plus total; counts as "all (CVE)". */
export function paperTable(rows: readonly PackageRow[]): string {
  const all = [...rows, totalRow(rows)];
  const header = `| | ${all.map((r) => (r.package === 'total' ? '**total**' : r.package)).join(' | ')} |`;
  const rule = `|---|${all.map(() => '---').join('|')}|`;
  const line = (label: string, pick: (r: PackageRow) => string) => `| ${label} | ${all.map(pick).join(' | ')} |`;
  return [
    header,
    rule,
    line('patches (CVE)', (r) => cell(r.units)),
    line('no compiled code', (r) => cell(r.noCode)),
    line('code patches', (r) => cell(r.code)),
    line('text-only', (r) => cell(r.textOnly)),
    line('kpatch-able', (r) => cell(r.kpatchable)),
    line('… confirmed against the binary', (r) => cell(r.confirmed)),
    line('live-patchable with new data', (r) => (measuredAll(r) ? cell(r.liveWithNewData) : `${cell(r.liveWithNewData)}+?`)),
    line('failed to classify', (r) => cell(r.failed)),
    ...(all.some((r) => r.notMeasurable.all > 0) ? [line('not measurable (reason not ours)', (r) => cell(r.notMeasurable))] : []),
    ...(all.some((r) => r.pending.all > 0) ? [line('not classified yet', (r) => cell(r.pending))] : []),
    line('text-only / code', (r) => `${pct(ratios(r).textOnly.all)} (${pct(ratios(r).textOnly.cve)})`),
    line('kpatch-able / text-only', (r) => `${pct(ratios(r).kpatchableOfTextOnly.all)} (${pct(ratios(r).kpatchableOfTextOnly.cve)})`),
    line('kpatch-able / code', (r) => `${pct(ratios(r).kpatchableOfCode.all)} (${pct(ratios(r).kpatchableOfCode.cve)})`),
    line('live-patchable with new data / code', (r) => `${pct(ratios(r).liveWithNewDataOfCode.all)} (${pct(ratios(r).liveWithNewDataOfCode.cve)})`),
    line('time', (r) => formatSeconds(r.seconds)),
  ].join('\n');
}

/** Per binary (long-running ones marked *), and whether the bundles passed the loader's dry run. */
function binariesCell(r: UnitResult): string {
  const per = (r.perBinary ?? []).map((b) => `${b.binary.split('/').pop()}${b.longRunning ? '*' : ''}: ${b.verdict}`);
  const confirmed = r.confirmation ? [r.confirmation.confirmed ? 'confirmed by wfpatch-ctl check' : `not confirmed: ${r.confirmation.how}`] : [];
  return [...per, ...confirmed].join('; ') || '–';
}

export function unitTable(results: readonly UnitResult[]): string {
  const lines = ['| package | unit | CVEs | views | verdict | objects | time | reason | binaries |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of results) {
    lines.push(
      `| ${r.package} | ${escape(r.unit)} | ${r.cves.join(', ') || '–'} | ${r.views.join(', ')} | ${r.verdict} | ${r.objects} | ${r.seconds > 0 ? formatSeconds(r.seconds) : 'cached'}${r.earlierTools ? ' (earlier tools)' : ''} | ${escape(withoutCachePaths(r.reason)) || '–'} | ${escape(binariesCell(r))} |`,
    );
  }
  return lines.join('\n');
}

export interface Report {
  readonly title: string;
  /** Paragraph(s) under the title: what was run, with which view and tools. */
  readonly intro: string;
  readonly rows: readonly PackageRow[];
  readonly results: readonly UnitResult[];
  /** Packages listed but not run (e.g. not in --packages and no earlier results). */
  readonly notRun: readonly { package: string; why: string }[];
}

export function renderReport(report: Report): string {
  const parts = [`# ${report.title}`, '', report.intro, '', '## The paper\'s table', '', 'Counts are "units (of which fix a CVE)". Percentages as in the paper: text-only among the patches that change compiled code (failed units count as "no"), kpatch-able among the text-only ones; then kpatch-able among all code patches. "Confirmed against the binary": kpatch-able units whose bundle passed the loader\'s dry run (`wfpatch-ctl check BUNDLE BINARY`) against the binary of that build; in compile-only mode bookworm-update units are re-measured on the update base\'s build (the binary users run); series-walk units of a wrapper build are dry-run against the binaries of the series before them (the built tree follows the walk and re-runs its recorded makes); in a waf build (samba) the long-running libraries and modules a unit changes are linked for it from the series before it (`waf build --targets`, in a kept built copy); in a gyp make build (nodejs) the build\'s own goal is made from the series before the unit in a kept built copy (`make -C out`, incremental after the first time); a unit\'s patch objects resolve each other\'s new functions within the bundle, as in the full pipeline; mariadb\'s cmake profile links no binary (none of its units is kpatch-able). "Live-patchable with new data" (not in the paper) adds to the kpatch-able ones the units that are not text-only only because they add variables create-diff-object carries in the patch (--new-data); "+?" marks a count from results classified before that existed (not measured: a lower bound, its ratio "–").', '', paperTable(report.rows)];
  if (report.notRun.length > 0) {
    parts.push('', 'Not run: ' + report.notRun.map((n) => `${n.package} (${n.why})`).join('; ') + '.');
  }
  const histogram = reasonHistogram(report.results);
  if (histogram.length > 0) {
    parts.push('', '## Why not', '', '| reason | units |', '|---|---|', ...histogram.map((h) => `| ${escape(h.reason)} | ${h.units} |`));
  }
  parts.push('', '## Every unit', '', unitTable(report.results), '');
  return parts.join('\n');
}
