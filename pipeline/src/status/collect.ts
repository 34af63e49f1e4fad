/**
 * One process's live-patch state, from its runtime (the control socket's `status` and
 * `inventory` answers), /proc (every thread, tracked or not), the installed fixes of its
 * build-ids (/usr/lib/wfpatch/<build-id>/, or its WF_PATCH_DIR) with their metadata JSON, and
 * what the hot-fix packages' maintainer scripts recorded (/run/wfpatch/*.outcome).
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { controlRequest, type RuntimeEvent } from '../apply/client.ts';

export const patchRoot = '/usr/lib/wfpatch';
export const outcomeDir = '/run/wfpatch';

export interface FixInfo {
  /** The .wfp path as the runtime opened it. */
  readonly patch: string;
  /** From the metadata JSON beside the .wfp, else the file name. */
  readonly name: string;
  readonly cves: readonly string[];
  readonly description: string | null;
}

export interface AppliedFix extends FixInfo {
  /** Epoch seconds (null if the runtime has no record, e.g. an older libwfpatch). */
  readonly time: number | null;
  readonly mode: string;
  /** Local mode: the generation with this fix. */
  readonly gen: number | null;
  readonly functions: number | null;
}

export interface PendingFix extends FixInfo {
  readonly why: string;
}

export interface ThreadState {
  readonly tid: number;
  readonly name: string;
  /** Null for a thread the runtime does not track (it stays in the generation it was in). */
  readonly gen: number | null;
  readonly tracked: boolean;
}

export interface ProcessStatus {
  readonly pid: number;
  readonly exe: string | null;
  readonly buildId: string | null;
  readonly mode: string;
  readonly busy: boolean;
  readonly generations: readonly number[];
  /** The newest generation, the one a fully switched process runs in (local mode). */
  readonly currentGen: number | null;
  readonly applied: readonly AppliedFix[];
  readonly notApplied: readonly PendingFix[];
  readonly threads: readonly ThreadState[];
  /** Tracked threads not (yet) in currentGen: they still run older code. */
  readonly behind: readonly ThreadState[];
  readonly autoload: { readonly dir: string | null; readonly off: string | null };
}

interface Inventory {
  modules: { path: string; build_id: string }[];
  applied: { patch: string | null; time: number; mode: string }[];
  autoload: { dir: string | null; off: string | null; files: { patch: string; outcome: string; reason?: string }[] };
  threads: { tid: number; name: string; gen: number }[];
  exe: string | null;
  build_id: string | null;
}

interface Status {
  mode: string;
  busy: boolean;
  patches: { patch: string; gen: number; functions: number }[];
  gen?: number;
}

async function ask(pid: number, request: string, timeoutMs: number): Promise<RuntimeEvent> {
  const r = await controlRequest(pid, request, { timeoutMs });
  const last = r.events.at(-1);
  if (!last || last.event !== request) throw new Error(`process ${pid} answered '${request}' with ${last?.event ?? 'nothing'}${r.reason ? `: ${r.reason}` : ''}`);
  return last;
}

export async function fixInfo(patch: string): Promise<FixInfo> {
  const json = patch.replace(/\.wfp$/, '.json');
  const meta = json === patch ? null : await readFile(json, 'utf8').then((t) => JSON.parse(t) as { name?: string; cves?: string[]; description?: string | null }, () => null);
  return { patch, name: meta?.name ?? basename(patch).replace(/\.wfp$/, ''), cves: meta?.cves ?? [], description: meta?.description ?? null };
}

async function wfpFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.wfp') && !n.startsWith('.')).sort().map((n) => join(dir, n));
}

/** "PID FILE outcome reason…" lines of the maintainer scripts, for this pid: file → text. */
async function scriptOutcomes(pid: number): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const name of await readdir(outcomeDir).catch(() => [] as string[])) {
    if (!name.endsWith('.outcome')) continue;
    const text = await readFile(join(outcomeDir, name), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const [p, file, outcome, ...reason] = line.split(' ');
      if (Number(p) === pid && file && outcome) found.set(file, `${name.replace(/\.outcome$/, '')} postinst: ${outcome}${reason.length ? `: ${reason.join(' ')}` : ''}`);
    }
  }
  return found;
}

async function procThreads(pid: number): Promise<{ tid: number; name: string }[]> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: { tid: number; name: string }[] = [];
  for (const t of tids) {
    const comm = await readFile(`/proc/${pid}/task/${t}/comm`, 'utf8').catch(() => '?');
    out.push({ tid: Number(t), name: comm.trim() });
  }
  return out.sort((a, b) => a.tid - b.tid);
}

export async function collectStatus(pid: number, timeoutMs = 10_000): Promise<ProcessStatus> {
  const status = (await ask(pid, 'status', timeoutMs)) as unknown as Status;
  const inv = (await ask(pid, 'inventory', timeoutMs)) as unknown as Inventory;
  const applied: AppliedFix[] = [];
  for (const [i, p] of status.patches.entries()) {
    const rec = inv.applied[i];
    const info = await fixInfo(p.patch ?? rec?.patch ?? '');
    applied.push({ ...info, time: rec?.time ?? null, mode: rec?.mode ?? status.mode, gen: status.mode === 'local' ? p.gen : null, functions: p.functions ?? null });
  }
  // Installed: the folders of its build-ids, and its WF_PATCH_DIR if autoload used one.
  const dirs = new Set(inv.modules.map((m) => join(patchRoot, m.build_id)));
  if (inv.autoload.dir && !inv.autoload.dir.includes('<build-id>')) dirs.add(inv.autoload.dir);
  const appliedPaths = new Set(applied.map((a) => a.patch));
  const autoload = new Map(inv.autoload.files.map((f) => [f.patch, f]));
  const scripts = await scriptOutcomes(pid);
  const notApplied: PendingFix[] = [];
  for (const dir of dirs) {
    for (const file of await wfpFiles(dir)) {
      if (appliedPaths.has(file)) continue;
      const a = autoload.get(file);
      const s = scripts.get(basename(file));
      let why: string;
      if (a?.outcome === 'rejected') why = `refused at start: ${a.reason ?? 'no reason given'}`;
      else if (s) why = s;
      else if (a?.outcome === 'applied') why = 'applied at start, rolled back since';
      else if (inv.autoload.off) why = `autoload off (${inv.autoload.off}) and not applied since`;
      else why = 'installed after the process started; not applied yet (wfbuild apply --all, or reinstall the hot-fix package)';
      notApplied.push({ ...(await fixInfo(file)), why });
    }
  }
  const tracked = new Map(inv.threads.map((t) => [t.tid, t]));
  const threads: ThreadState[] = (await procThreads(pid)).map((t) => {
    const r = tracked.get(t.tid);
    return r ? { tid: t.tid, name: r.name, gen: r.gen, tracked: true } : { tid: t.tid, name: t.name, gen: null, tracked: false };
  });
  const currentGen = status.mode === 'local' ? status.gen ?? null : null;
  const generations = status.mode === 'local' ? [...new Set([0, ...status.patches.map((p) => p.gen), ...(currentGen !== null ? [currentGen] : [])])].sort((a, b) => a - b) : [];
  const behind = currentGen === null ? [] : threads.filter((t) => t.tracked && t.gen !== currentGen);
  return {
    pid,
    exe: inv.exe,
    buildId: inv.build_id,
    mode: status.mode,
    busy: status.busy,
    generations,
    currentGen,
    applied,
    notApplied,
    threads,
    behind,
    autoload: { dir: inv.autoload.dir, off: inv.autoload.off },
  };
}
