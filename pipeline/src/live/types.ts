/** The shapes `wfbuild live` shares between its servers' runs (run.ts, slapd-run.ts) and its readers. */
import type { LiveMode, ModeReport } from './analyze.ts';

export const liveServers = ['memcached', 'slapd'] as const;
export type LiveServer = (typeof liveServers)[number];

export interface LiveOptions {
  readonly server: LiveServer;
  readonly modes: readonly LiveMode[];
  readonly cycles: number;
  readonly intervalS: number;
  readonly out: string;
  /** A bundle to apply each cycle; without one each step is a migration without a patch (`next`). */
  readonly bundle?: string;
  /** The server binary to run (default: the enabled build's); a bundle targets one build-id. */
  readonly binary?: string;
  /** A patch of the package's own Debian series (e.g. 0007-uninitialized-variables): bundle and binary built by wfbuild against the enabled build (bundle.ts). */
  readonly debianPatch?: string;
  /** Connections of each client (memcaslap and memload; each at least 16). */
  readonly connections?: number;
  /** memload's pause between an answer and the next request on a connection, µs (bounds the samples to carry over the serial line). */
  readonly thinkUs?: number;
  /** memcached worker threads (-t). */
  readonly threads?: number;
  /** `exe`: libwfpatch pins only the server's executable (WF_PIN=exe), not its libraries: a smaller wf_create, library code not patchable in local mode. */
  readonly pin?: 'exe' | 'all';
  /** memccapable after the steps of every K-th cycle (and of the last one); default 1 (every cycle). */
  readonly capableEvery?: number;
  /** memcached: preload cne-probe.c and keep a `watch connevents` client attached; after every step one new connection, and which code formatted its conn_new line goes into guest/MODE/cne.jsonl. */
  readonly cneProbe?: boolean;
  /** A fault for the guest script to inject: `kill-client@N` or `term-server@N`. */
  readonly fault?: string;
  readonly bzImage?: string;
  readonly onOutput?: (line: string) => void;
}

export interface LiveReport {
  readonly server: LiveServer;
  readonly package: string;
  readonly bundle: string | null;
  readonly binary: string;
  readonly cycles: number;
  readonly intervalS: number;
  /** What libwfpatch pinned at wf_init: the executable and its libraries (default), or the executable only. */
  readonly pin: 'all' | 'exe';
  readonly kernel: { readonly variant: 'bench'; readonly cpus: number };
  readonly clock: { readonly clocksource: string | null; readonly resolutionNs: number | null };
  readonly load: string;
  readonly modes: Partial<Record<LiveMode, ModeReport | { readonly error: string }>>;
  readonly guest: { readonly exitCode: number | null; readonly timedOut: boolean; readonly kernelFailure: string | null };
}

/** live.json without the plot's points (they are in the svg). */
export function stripSeries(report: LiveReport): unknown {
  const modes = Object.fromEntries(
    Object.entries(report.modes).map(([mode, r]) => {
      if (!r || 'error' in r) return [mode, r];
      const { series, ...rest } = r;
      return [mode, { ...rest, patchMoments: series.patches }];
    }),
  );
  return { ...report, modes };
}
