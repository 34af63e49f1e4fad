/**
 * latency.svg: request latency over time, one panel per mode, the patch moments marked as
 * rules (apply and rollback in two colours). A vega-lite spec, compiled and rendered to SVG in
 * Node by vega (no browser, no canvas: the 'none' renderer).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { LiveMode, ModeReport } from './analyze.ts';

/** What the plot needs of a live report. */
export interface PlotInput {
  readonly server: string;
  readonly cycles: number;
  readonly intervalS: number;
  readonly modes: Partial<Record<LiveMode, ModeReport | { readonly error: string }>>;
}

type Row = Record<string, string | number>;

/**
 * Above this many patch moments a panel's rules cover it (a 1000-cycle soak draws 2,000 of them
 * across 900 px): the overview then draws them faint and each mode gets a second panel, a
 * window of `zoomS` seconds from the middle of the run, where every moment is a distinct line.
 */
export const zoomAbovePatches = 60;
export const zoomS = 20;

/** The rules' opacity: clear for a few moments, faint (but there) for thousands. */
export function ruleOpacity(patches: number): number {
  return Math.min(0.8, Math.max(0.05, zoomAbovePatches / Math.max(patches, 1)));
}

/** The zoom window: `zoomS` seconds around the middle patch moment (none for a short run). */
export function zoomWindow(patchTimes: readonly number[]): { from: number; to: number } | null {
  if (patchTimes.length <= zoomAbovePatches) return null;
  const sorted = [...patchTimes].sort((a, b) => a - b);
  const mid = sorted[Math.floor(sorted.length / 2)]!;
  return { from: mid - zoomS / 2, to: mid + zoomS / 2 };
}

function panel(title: string, subtitle: string, points: Row[], patches: Row[], opacity: number, xTitle: string): object {
  return {
    title: { text: title, subtitle },
    width: 900,
    height: 260,
    layer: [
      {
        data: { values: points },
        mark: { type: 'point' as const, filled: true, size: 6, opacity: 0.35, color: '#4c78a8' },
        encoding: {
          x: { field: 't', type: 'quantitative' as const, title: xTitle, scale: { zero: false, nice: false } },
          y: { field: 'us', type: 'quantitative' as const, title: 'request latency (µs, log)', scale: { type: 'log' as const } },
        },
      },
      {
        data: { values: patches },
        mark: { type: 'rule' as const, strokeWidth: 1, opacity },
        encoding: {
          x: { field: 't', type: 'quantitative' as const },
          color: { field: 'action', type: 'nominal' as const, title: 'patch moment', legend: { symbolOpacity: 1 }, scale: { domain: ['apply', 'rollback'], range: ['#e45756', '#54a24b'] } },
        },
      },
    ],
  };
}

export function latencySpec(report: PlotInput): TopLevelSpec {
  const panels = Object.entries(report.modes).flatMap(([mode, r]) => {
    if (!r || 'error' in r) return [];
    const points: Row[] = r.series.points.map(([t, us]) => ({ t, us: Math.max(us, 1) }));
    const patches: Row[] = r.series.patches.map((p) => ({ t: p.t, action: p.action, switchMs: p.switchMs ?? -1 }));
    const w = r.latencyUs.window;
    const o = r.latencyUs.outside;
    const subtitle = w && o ? `p99.9 in patch windows ${w.p999.toFixed(0)} µs, outside ${o.p999.toFixed(0)} µs; ${r.requests} requests, ${r.failed} failed` : `${r.requests} requests, ${r.failed} failed`;
    const xTitle = 'time since the load started (s)';
    const overview = panel(`${mode} quiescence`, subtitle, points, patches, ruleOpacity(patches.length), xTitle);
    const zoom = zoomWindow(r.series.patches.map((p) => p.t));
    if (!zoom) return [overview];
    const inZoom = (row: Row): boolean => (row.t as number) >= zoom.from && (row.t as number) <= zoom.to;
    const zoomPoints = points.filter(inZoom);
    const zoomPatches = patches.filter(inZoom);
    return [
      overview,
      panel(
        `${mode} quiescence, ${zoomS} s from the middle of the run`,
        `${zoomPatches.length} patch moments, ${zoomPoints.length} of the plotted requests (the plot keeps every request above p99 and a bounded sample of the rest)`,
        zoomPoints,
        zoomPatches,
        0.8,
        xTitle,
      ),
    ];
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `${report.server} under load, live-patched: ${report.cycles} cycle(s) of apply + rollback every ${report.intervalS} s` },
    vconcat: panels,
    resolve: { scale: { y: 'shared' } },
    config: { font: 'DejaVu Sans, sans-serif' },
  } as TopLevelSpec;
}

export async function renderLatencySvg(report: PlotInput): Promise<string> {
  const spec = compile(latencySpec(report)).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
