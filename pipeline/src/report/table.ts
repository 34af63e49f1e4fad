import type { Report } from './types.ts';

const yesNo = (v: boolean | null): string => (v === null ? '-' : v ? 'yes' : 'no');

/** One row per report: patch, package, CVEs, text-only, kpatch-able, bundles, first reason. */
export function reportTable(reports: readonly Report[]): string {
  const header = ['patch', 'package', 'cves', 'outcome', 'text-only', 'kpatch-able', 'bundles', 'why'];
  const rows = reports.map((r) => [
    r.patch.name,
    r.package ? `${r.package.name} ${r.package.version}` : '-',
    r.cves.join(' ') || '-',
    r.outcome,
    yesNo(r.textOnly),
    yesNo(r.kpatchable),
    String(r.bundles.length),
    firstReason(r),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  const lines = [line(header), ...rows.map(line)];
  const count = (pred: (r: Report) => boolean): number => reports.filter(pred).length;
  const code = reports.filter((r) => r.outcome !== 'no-compiled-code');
  lines.push(
    '',
    `${reports.length} patch(es): ${code.length} change compiled code; text-only ${count((r) => r.textOnly === true)}/${code.length}, kpatch-able ${count((r) => r.kpatchable === true)}/${code.length}`,
  );
  return lines.join('\n');
}

function firstReason(r: Report): string {
  const reason = r.reasons[0];
  if (reason) return [reason.object, reason.symbol, reason.what].filter(Boolean).join(': ').slice(0, 100);
  if (r.outcome === 'no-compiled-code') return (r.notes[0] ?? 'no compiled code changed').slice(0, 100);
  return '';
}
