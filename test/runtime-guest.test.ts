// libwfpatch in the guest (debug kernel with address-space generations): local mode, where every
// thread migrates on its own, side by side with global mode for the three problems. One boot
// runs every scenario (kpatch-fork/runtime/tests/guest-suite.sh); the assertions read the
// scenario outputs and the runtime's JSON logs that come back through /results.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { runInVm, type RunInVmResult } from '../pipeline/src/vm/index.ts';

const runtime = join(repoRoot, 'kpatch-fork/runtime');
const build = join(runtime, 'tests/build');
// The 10 s computation / blocked read(); WFPATCH_RUNTIME_LONG_MS shortens it when CI
// time is tight (the point stands at a few seconds).
const longMs = Number(process.env.WFPATCH_RUNTIME_LONG_MS ?? 10000);
// Boot this bzImage instead of the debug variant's build (e.g. a kernel series in progress).
const bzImage = process.env.WFPATCH_RUNTIME_BZIMAGE;

const scenarios = [
  'versions:local:versions',
  `long:local:long:${longMs}`,
  `blocking:local:blocking:${longMs}`,
  'deps-local:local:deps:v2.o',
  'deps-global:global:deps:v2.o',
  'stack:local:stack:slow2.o:3000',
  'stacked:local:stacked:v2.o:v3.o',
  'shlib:local:shlib:lib11.o',
  'bad:local:bad:v2.o:truncated.o:wrongid.o:badreloc.o',
  'unwind:local:unwind:unwind.o',
  'churn:local:churn:v2.o',
  'callbacks:local:callbacks:v2.o',
  'tiny:local:tiny:tiny.o',
  'cycles:local:cycles:v2.o:50',
  'sleeper:local:sleeper:v2.o',
  'sleeper2:local:sleeper:v2.o:v3.o',
];

let out: string;
let vm: RunInVmResult;

interface Outcome {
  rc: number;
  lines: Record<string, any>[];
  result: Record<string, any>;
  log: Record<string, any>[];
}

async function outcome(name: string): Promise<Outcome> {
  const read = async (ext: string): Promise<string> => readFile(join(out, `${name}.${ext}`), 'utf8').catch(() => '');
  const parse = (text: string): Record<string, any>[] => text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const lines = parse(await read('out'));
  return { rc: Number((await read('rc')).trim()), lines, result: lines.at(-1) ?? {}, log: parse(await read('jsonl')) };
}

const events = (log: Record<string, any>[], name: string): Record<string, any>[] => log.filter((e) => e.event === name);

beforeAll(async () => {
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), '-j2'], { env: { MAKEFLAGS: '' } });
  await execa('make', ['-C', runtime, 'test-programs']);
  out = await mkdtemp(join(tmpdir(), 'wfruntime-guest-'));
  const files = ['wftest', 'libwftarget.so', 'v2.o', 'v3.o', 'slow2.o', 'lib11.o', 'wrongid.o', 'badreloc.o', 'unwind.o', 'tiny.o'].map((f) => ({ host: join(build, f) }));
  vm = await runInVm({
    variant: 'debug',
    ...(bzImage ? { bzImage } : {}),
    program: join(runtime, 'tests/guest-suite.sh'),
    args: scenarios,
    files,
    env: { WF_GLOBAL_TIMEOUT: '3' },
    cpus: 2,
    memMiB: 1024,
    timeoutSec: 900,
    outDir: out,
  });
}, 1_800_000);

describe('libwfpatch local mode in the guest', () => {
  it('the guest ran every scenario without a kernel failure', () => {
    expect(vm.timedOut).toBe(false);
    expect(vm.kernelFailure).toBeNull();
    expect(vm.exitCode).toBe(0);
  });

  it('8 workers migrate on their own; every call after a worker migrated returns 2', async () => {
    const o = await outcome('versions');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.local).toBe(true);
    for (const w of o.result.workers) {
      expect(w.migrated_ms).toBeGreaterThanOrEqual(0);
      expect(w.gen).toBeGreaterThan(0);
      expect(w.calls_after_migration).toBeGreaterThan(0);
      expect(w.violations).toBe(0);
    }
    const init = events(o.log, 'init')[0];
    expect(init).toMatchObject({ mode: 'local', generations: true });
    expect(init.pinned.length).toBeGreaterThan(0);
    expect(events(o.log, 'generation_created')[0].gen).toBeGreaterThan(0);
    expect(events(o.log, 'migrated')).toHaveLength(8);
    expect(events(o.log, 'summary')[0]).toMatchObject({ outcome: 'applied', mode: 'local', migrated: 8 });
  });

  it('problem 1: a long computation delays only its own thread', async () => {
    const o = await outcome('long');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    const [busy, ...others] = o.result.workers;
    expect(busy.migrated_ms).toBeGreaterThan(longMs * 0.8);
    for (const w of others) expect(w.migrated_ms).toBeLessThan(longMs / 4);
  });

  it('problem 2: a thread blocked in read() delays only itself', async () => {
    const o = await outcome('blocking');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.reader.value).toBe(2);
    expect(o.result.reader.migrated_ms).toBeGreaterThan(longMs * 0.8);
    for (const w of o.result.workers) expect(w.migrated_ms).toBeLessThan(longMs / 4);
  });

  it('problem 3: the dependency completes in local mode and deadlocks (timeout, reported) in global mode', async () => {
    const local = await outcome('deps-local');
    expect(local.result).toMatchObject({ outcome: 'done', progress: true, a_value: 2 });
    const global = await outcome('deps-global');
    expect(global.result).toMatchObject({ outcome: 'rejected', progress: true, a_value: 1 });
    expect(global.result.reason).toMatch(/global quiescence not reached within 3\.0 s.*A\(/);
  });

  it('a thread inside the old function finishes the old body; after its migration it runs the new one', async () => {
    const o = await outcome('stack');
    expect(o.result).toMatchObject({ ok: true, outcome: 'done', first: 1, second: 2 });
  });

  it('stacked patches and rollback move threads between generations without writing code', async () => {
    const o = await outcome('stacked');
    const steps = o.lines.filter((l) => 'step' in l);
    expect(steps.map((s) => [s.event, s.value])).toEqual([
      ['done', 2], ['done', 3], ['done', 2], ['done', 1], ['rejected', 1], ['done', 3],
    ]);
    // Rollbacks write no code: only one jumps_written per apply, and the rolled-back
    // generations are deleted.
    expect(events(o.log, 'jumps_written')).toHaveLength(3);
    expect(events(o.log, 'jumps_removed')).toHaveLength(0);
    expect(events(o.log, 'generation_deleted').length).toBeGreaterThanOrEqual(2);
  });

  it('patches a function in a shared library', async () => {
    const o = await outcome('shlib');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.workers.every((w: any) => w.last === 11 && w.violations === 0)).toBe(true);
  });

  it('registers .eh_frame and moves main at its first quiescence point', async () => {
    const o = await outcome('unwind');
    expect(o.result).toMatchObject({ ok: true, outcome: 'done' });
    expect(o.result.before).toBeGreaterThanOrEqual(3);
    expect(o.result.after).toBe(o.result.before + 1000);
    expect(events(o.log, 'jumps_written')[0].eh_frames_registered).toBe(1);
  });

  it('threads born and dying during a local transition neither block nor break it', async () => {
    const o = await outcome('churn');
    expect(o.result.ok, JSON.stringify(o.result)).toBe(true);
    expect(o.result.churned).toBeGreaterThan(5);
  });

  it("the prototype's configuration works in local mode too (thread_count, callbacks)", async () => {
    const o = await outcome('callbacks');
    expect(o.result).toMatchObject({ ok: true, applied: 1, done: 1, migrated: 4, trigger_local: 1, trigger_global: 0 });
  });

  it('replaces a 3-byte function in the new generation', async () => {
    const o = await outcome('tiny');
    expect(o.result).toMatchObject({ ok: true, before: 0, after: 7 });
  });

  it('a rolled-back patch is unmapped once the kernel confirms no thread runs in its generation: 50 cycles leave nothing behind', async () => {
    // Before: every cycle left the patch region and its code mapping (≈3 mappings, 8–12 KiB).
    const o = await outcome('cycles');
    expect(o.result, JSON.stringify(o.result)).toMatchObject({ ok: true, flat: true });
    expect(o.result.maps[1]).toBe(o.result.maps[0]);
    const rollbacks = events(o.log, 'summary').filter((e) => e.action === 'rollback');
    expect(rollbacks).toHaveLength(80);
    // Every rolled-back generation deleted without an error, every patch unmapped, none kept.
    const deleted = events(o.log, 'generation_deleted');
    expect(deleted.length).toBeGreaterThanOrEqual(80);
    expect(deleted.filter((e) => e.error)).toEqual([]);
    expect(events(o.log, 'patch_unloaded')).toHaveLength(80);
    expect(events(o.log, 'patch_kept')).toHaveLength(0);
  });

  it('a thread asleep in the rolled-back generation (left live patching, as memcached\'s background threads do) keeps it and the patch until it has left', async () => {
    const o = await outcome('sleeper');
    expect(o.result, JSON.stringify(o.result)).toMatchObject({ ok: true, applied: 2, rolledBack: 1 });
    const rollback = events(o.log, 'trigger').find((e) => e.action === 'rollback')!;
    const kept = events(o.log, 'generation_kept');
    expect(kept.map((e) => e.seq)).toEqual([rollback.seq]);
    // Later, once the sleeper re-joined elsewhere: the generation deleted and the patch unmapped,
    // under the rollback's seq, after its done.
    const at = (e: Record<string, any>): number => o.log.indexOf(e);
    const done = events(o.log, 'done').find((e) => e.seq === rollback.seq)!;
    const deleted = events(o.log, 'generation_deleted').filter((e) => e.seq === rollback.seq);
    const unloaded = events(o.log, 'patch_unloaded').filter((e) => e.seq === rollback.seq);
    expect(deleted).toHaveLength(1);
    expect(deleted[0].gen).toBe(kept[0].gen);
    expect(deleted[0].error).toBeUndefined();
    expect(unloaded).toHaveLength(1);
    expect(at(unloaded[0])).toBeGreaterThan(at(done));
    expect(events(o.log, 'patch_kept')).toHaveLength(0);
  });

  it('stacked: the older patch stays mapped while the newer one\'s generation (which has its jumps too) waits for the sleeper', async () => {
    const o = await outcome('sleeper2');
    expect(o.result, JSON.stringify(o.result)).toMatchObject({ ok: true, applied: 3, rolledBack: 1 });
    const rollbacks = events(o.log, 'trigger').filter((e) => e.action === 'rollback').map((e) => e.seq);
    expect(rollbacks).toHaveLength(2);
    // v3's generation waits (the sleeper is in it). It carries v2's jumps too, so v2 goes only
    // after it — whether v2's rollback comes before the sleeper wakes (v2 kept, then freed) or
    // after (a loaded host: then freed at once).
    expect(events(o.log, 'generation_kept')[0]?.seq).toBe(rollbacks[0]);
    const unloaded = events(o.log, 'patch_unloaded');
    expect(unloaded.map((e) => e.seq)).toEqual(rollbacks);
    expect(unloaded.map((e) => e.patch.replace(/.*\//, ''))).toEqual(['v3.o', 'v2.o']);
    const at = (e: Record<string, any>): number => o.log.indexOf(e);
    const v3Deleted = events(o.log, 'generation_deleted').find((e) => e.seq === rollbacks[0])!;
    expect(at(unloaded[1]!)).toBeGreaterThan(at(v3Deleted));
    expect(events(o.log, 'patch_kept')).toHaveLength(0);
  });

  it('bad patches are rejected before any generation is created, and the process keeps serving', async () => {
    const o = await outcome('bad');
    const steps = o.lines.filter((l) => 'step' in l);
    expect(steps.map((s) => s.event)).toEqual(['rejected', 'rejected', 'rejected', 'done']);
    expect(steps[0].reason).toMatch(/truncated|beyond the file/);
    expect(steps[1].reason).toMatch(/wrong build-id/);
    expect(steps[2].reason).toMatch(/unsupported relocation type 25/);
    expect(events(o.log, 'generation_created')).toHaveLength(1);
  });
});
