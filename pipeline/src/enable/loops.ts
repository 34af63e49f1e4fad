/**
 * Quiescence loops: functions that are on a tracked thread's stack at its quiescence point and
 * never return (slapd's listener loop `slapd_daemon_task`, its pool workers'
 * `ldap_int_thread_pool_wrapper`). A patch that replaces one never takes effect on that thread:
 * the thread keeps running the old loop. An enabled application lists them in
 * `corpus/apps/<package>/quiescence-loops` (one name a line, `#` comments; its README says why
 * each is there), and `wfbuild PATCH --enabled` refuses a bundle that replaces one.
 */
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { repoRoot } from '../paths.ts';
import type { ObjectReport, Reason } from '../report/types.ts';
import { appsRoot } from './apps.ts';

export interface QuiescenceLoops {
  /** The list as the repository shows it (for messages). */
  readonly file: string;
  readonly names: ReadonlySet<string>;
}

/** Names out of the file's text: one per line, `#` starts a comment. */
export function parseLoops(text: string): Set<string> {
  return new Set(text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean));
}

/** The package's list, or null when it has none (nothing is refused). */
export async function quiescenceLoops(pkg: string, appsDir: string = appsRoot): Promise<QuiescenceLoops | null> {
  const path = join(appsDir, pkg, 'quiescence-loops');
  const text = await readFile(path, 'utf8').catch(() => null);
  return text === null ? null : { file: relative(repoRoot, path) || path, names: parseLoops(text) };
}

interface VerdictFunction {
  readonly name?: unknown;
  readonly origName?: unknown;
}

/** The function a symbol name belongs to (GCC's clones: f.constprop.0, f.cold, f.part.1 → f). */
function baseName(symbol: string): string {
  return symbol.replace(/\..*$/, '');
}

/**
 * Per binary, a reason for every loop function that create-diff-object replaces in it (changed,
 * or included because its .cold part changed).
 */
export function loopReasons(objects: readonly ObjectReport[], loops: QuiescenceLoops): Map<string, Reason[]> {
  const out = new Map<string, Reason[]>();
  for (const o of objects) {
    for (const v of o.verdicts) {
      const verdict = v.verdict as { changedFunctions?: VerdictFunction[]; includedFunctions?: VerdictFunction[] } | null;
      const replaced = [...(verdict?.changedFunctions ?? []), ...(verdict?.includedFunctions ?? [])];
      const hit = new Set(
        replaced.map((f) => baseName(String(typeof f.origName === 'string' ? f.origName : f.name))).filter((n) => loops.names.has(n)),
      );
      for (const fn of hit) {
        const reasons = out.get(v.binary) ?? [];
        reasons.push({
          object: o.object,
          kind: 'quiescence-loop',
          symbol: fn,
          what: `${fn} is on a thread's stack at its quiescence point and never returns (${loops.file}): the thread would keep the old version, so the patch would never take effect there`,
        });
        out.set(v.binary, reasons);
      }
    }
  }
  return out;
}
