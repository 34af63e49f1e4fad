/** What every server's live run does with the guest: its console progress lines, then its per-mode results judged. */
import { join } from 'node:path';
import { analyzeMode, type LiveMode } from './analyze.ts';
import type { LiveReport } from './types.ts';

/** A console handler that passes the guest script's `live: …` lines to `say` (chunks end anywhere). */
export function liveConsole(say: (line: string) => void): (text: string) => void {
  let pending = '';
  return (text) => {
    const lines = (pending + text).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('live: ')) say(line.slice(6).trimEnd());
  };
}

/** Each mode's folder under `guestResults` judged; a mode that cannot be judged carries its error, and the clock is the last judged mode's. */
export async function analyzeModes(
  guestResults: string,
  modes: readonly LiveMode[],
  cycles: number,
): Promise<{ modes: LiveReport['modes']; clock: LiveReport['clock'] }> {
  const out: LiveReport['modes'] = {};
  let clock: LiveReport['clock'] = { clocksource: null, resolutionNs: null };
  for (const mode of modes) {
    try {
      const report = await analyzeMode(join(guestResults, mode), { cycles });
      out[mode] = report;
      clock = { clocksource: report.clock.clocksource, resolutionNs: report.clock.resolutionNs };
    } catch (error) {
      out[mode] = { error: (error as Error).message };
    }
  }
  return { modes: out, clock };
}
