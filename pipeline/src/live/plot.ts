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

export function latencySpec(report: PlotInput): TopLevelSpec {
  const panels = Object.entries(report.modes).flatMap(([mode, r]) => {
    if (!r || 'error' in r) return [];
    const points: Row[] = r.series.points.map(([t, us]) => ({ t, us: Math.max(us, 1) }));
    const patches: Row[] = r.series.patches.map((p) => ({ t: p.t, action: p.action, switchMs: p.switchMs ?? -1 }));
    const w = r.latencyUs.window;
    const o = r.latencyUs.outside;
    const subtitle = w && o ? `p99.9 in patch windows ${w.p999.toFixed(0)} µs, outside ${o.p999.toFixed(0)} µs; ${r.requests} requests, ${r.failed} failed` : `${r.requests} requests, ${r.failed} failed`;
    return [
      {
        title: { text: `${mode} quiescence`, subtitle },
        width: 900,
        height: 260,
        layer: [
          {
            data: { values: points },
            mark: { type: 'point' as const, filled: true, size: 6, opacity: 0.35, color: '#4c78a8' },
            encoding: {
              x: { field: 't', type: 'quantitative' as const, title: 'time since the load started (s)' },
              y: { field: 'us', type: 'quantitative' as const, title: 'request latency (µs, log)', scale: { type: 'log' as const } },
            },
          },
          {
            data: { values: patches },
            mark: { type: 'rule' as const, strokeWidth: 1, opacity: 0.8 },
            encoding: {
              x: { field: 't', type: 'quantitative' as const },
              color: { field: 'action', type: 'nominal' as const, title: 'patch moment', scale: { domain: ['apply', 'rollback'], range: ['#e45756', '#54a24b'] } },
            },
          },
        ],
      },
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
