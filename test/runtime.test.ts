// libwfpatch on the host: the loader, relocation, the triggers, the JSON log and global mode
// (which needs no kernel support), with patches from create-diff-object. Local mode needs the
// generations kernel: test/runtime-guest.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';

const runtime = join(repoRoot, 'kpatch-fork/runtime');
const build = join(runtime, 'tests/build');
const wftest = join(build, 'wftest');
const wfbuild = join(repoRoot, 'pipeline/bin/wfbuild');
const patch = (name: string): string => join(build, name);

interface Run {
  exitCode: number | undefined;
  lines: Record<string, unknown>[];
  result: Record<string, any>;
  log: Record<string, any>[];
  stderr: string;
}

let tmp: string;
let runs = 0;

async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const logfile = join(tmp, `log-${runs++}.jsonl`);
  const r = await execa(wftest, args, {
    env: { WF_GLOBAL: '1', WF_LOGFILE: logfile, ...env },
    reject: false,
    timeout: 60_000,
  });
  const lines = r.stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  const logText = await readFile(logfile, 'utf8').catch(() => '');
  // Every log line is one complete JSON object.
  const log = logText.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, any>);
  return { exitCode: r.exitCode, lines, result: lines.at(-1) ?? {}, log, stderr: r.stderr };
}

const events = (log: Record<string, any>[], name: string): Record<string, any>[] => log.filter((e) => e.event === name);

beforeAll(async () => {
  // create-diff-object makes the test patches: build it and the runtime first.
  await execa('make', ['-C', join(repoRoot, 'kpatch-fork'), '-j2'], { env: { MAKEFLAGS: '' } });
  await execa('make', ['-C', runtime, 'test-programs']);
  tmp = await mkdtemp(join(tmpdir(), 'wfruntime-'));
});

describe('libwfpatch global mode (host)', () => {
  it('8 workers switch from version 1 to 2 on SIGPATCH with WF_PATCH_QUEUE, never back', async () => {
    const r = await run(['versions'], { WF_PATCH_QUEUE: patch('v2.o') });
    expect(r.exitCode).toBe(0);
    expect(r.result.ok).toBe(true);
    expect(r.result.workers).toHaveLength(8);
    for (const w of r.result.workers) {
      expect(w.first_new_ms).toBeGreaterThanOrEqual(0);
      expect(w.violations).toBe(0);
      expect(w.last).toBe(2);
    }
    expect(events(r.log, 'init')[0]).toMatchObject({ mode: 'global', threads: 'automatic' });
    expect(events(r.log, 'trigger')[0]).toMatchObject({ source: 'signal', action: 'apply', patch: patch('v2.o') });
    const loaded = events(r.log, 'patch_loaded')[0];
    expect(loaded.functions).toBe(1);
    expect(loaded.text_bytes).toBeGreaterThan(0);
    expect(events(r.log, 'arrived')).toHaveLength(8);
    expect(events(r.log, 'quiescence')[0].ms).toBeGreaterThanOrEqual(0);
    expect(events(r.log, 'jumps_written')[0].functions[0]).toMatchObject({ name: 'version', jump: 5 });
    expect(events(r.log, 'jumps_written')[0].eh_frames_registered).toBe(1);
    const summary = events(r.log, 'summary')[0];
    expect(summary).toMatchObject({ outcome: 'applied', mode: 'global', migrated: 8 });
    expect(summary.max_stall_ms).toBeGreaterThanOrEqual(summary.quiescence_ms - summary.max_thread_ms - 1);
    expect(events(r.log, 'totals')[0]).toMatchObject({ applied: 1, rejected: 0 });
  });

  it('stacks v3 on v2, rolls both back, refuses a third rollback, and applies again', async () => {
    const r = await run(['stacked', patch('v2.o'), patch('v3.o')]);
    expect(r.exitCode).toBe(0);
    const steps = r.lines.filter((l) => 'step' in l);
    expect(steps.map((s) => [s.event, s.value])).toEqual([
      ['done', 2], ['done', 3], ['done', 2], ['done', 1], ['rejected', 1], ['done', 3],
    ]);
    expect(steps[4].reason).toContain('nothing to roll back');
    // v3 calls snprintf/strtol, which the program never links: trampolines to libc.
    const v3 = events(r.log, 'patch_loaded').find((e) => e.patch === patch('v3.o'));
    expect(v3?.plt_entries).toBeGreaterThanOrEqual(1);
    expect(events(r.log, 'jumps_removed')).toHaveLength(2);
  });

  it('patches a function in a shared library the program uses (by its build-id)', async () => {
    const r = await run(['shlib', patch('lib11.o')]);
    expect(r.exitCode).toBe(0);
    expect(r.result.workers.map((w: any) => w.last)).toEqual([11, 11, 11, 11]);
    const loaded = events(r.log, 'patch_loaded')[0];
    expect(loaded.target).toMatch(/libwftarget\.so$/);
    expect(loaded.got_slots).toBe(1); // -fPIC code reads lib_base through a loader-made GOT slot
    // ... and lib_hidden, a hidden global the linker made local, as __wfsym:1:lib_hidden:
    expect(loaded.relocations).toBeGreaterThanOrEqual(3);
  });

  it('a call in progress finishes the old body; the next call runs the new one', async () => {
    const r = await run(['stack', patch('slow2.o'), '800']);
    expect(r.result).toMatchObject({ ok: true, outcome: 'done', first: 1, second: 2 });
  });

  it('problem 1 in global mode: one long computation delays every thread', async () => {
    const r = await run(['long', '1500'], { WF_PATCH_QUEUE: patch('v2.o') });
    expect(r.result.ok).toBe(true);
    for (const w of r.result.workers) expect(w.first_new_ms).toBeGreaterThan(1000);
  });

  it('problem 2 in global mode: a thread blocked in read() delays every thread', async () => {
    const r = await run(['blocking', '1500'], { WF_PATCH_QUEUE: patch('v2.o') });
    expect(r.result.ok).toBe(true);
    expect(r.result.reader.value).toBe(2);
    for (const w of r.result.workers) expect(w.first_new_ms).toBeGreaterThan(1000);
  });

  it('problem 3 in global mode: a dependency deadlocks the barrier; the timeout reports it and releases', async () => {
    const r = await run(['deps', patch('v2.o')], { WF_GLOBAL_TIMEOUT: '1' });
    expect(r.result.outcome).toBe('rejected');
    expect(r.result.reason).toMatch(/global quiescence not reached within 1\.0 s: 1 thread\(s\) never reached a quiescence point: A\(\d+\)/);
    expect(r.result.progress).toBe(true); // both threads run on afterwards
    expect(r.result.a_value).toBe(1); // unpatched
    expect(events(r.log, 'quiescence_timeout')[0].threads).toMatch(/^A\(/);
  });

  it("registers the patch's .eh_frame: backtrace() through a patched function finds every frame", async () => {
    const r = await run(['unwind', patch('unwind.o')]);
    expect(r.result).toMatchObject({ ok: true, outcome: 'done' });
    expect(r.result.before).toBeGreaterThanOrEqual(3); // main and libc's start-up frames below
    expect(r.result.after).toBe(r.result.before + 1000); // the patched body, same depth
    expect(events(r.log, 'jumps_written')[0].eh_frames_registered).toBe(1);
  });

  it("the prototype's configuration: thread_count and every callback, each called as documented", async () => {
    const r = await run(['callbacks', patch('v2.o')]);
    expect(r.result).toMatchObject({ ok: true, applied: 1, done: 1, migrated: 4, min_remaining: 0, trigger_global: 1, trigger_local: 0 });
    expect(events(r.log, 'init')[0].threads).toBe('thread_count');
  });

  it('replaces a 3-byte function: the jump runs over its alignment padding up to the next symbol', async () => {
    const r = await run(['tiny', patch('tiny.o')]);
    expect(r.result).toMatchObject({ ok: true, outcome: 'done', before: 0, after: 7 });
  });

  it('threads born and dying during a transition (explicitly and not) neither block nor break it', async () => {
    const r = await run(['churn', patch('v2.o')]);
    expect(r.result.ok).toBe(true);
    expect(r.result.churned).toBeGreaterThan(20);
    expect(events(r.log, 'done')).toHaveLength(1);
  });

  it('a rolled-back patch is unmapped: 100 apply/rollback cycles leave no mapping and no memory behind', async () => {
    // Before: every cycle left 2 mappings and 8.5 KiB of RSS (the patch region kept mapped).
    const r = await run(['cycles', patch('v2.o'), '100']);
    expect(r.result, JSON.stringify(r.result)).toMatchObject({ ok: true, flat: true });
    expect(r.result.maps[1]).toBe(r.result.maps[0]);
    expect(events(r.log, 'patch_unloaded')).toHaveLength(130); // 30 warm-up cycles + 100
    expect(events(r.log, 'patch_kept')).toHaveLength(0);
  });

  it('WF_CYCLIC triggers periodically: the queue in order, then migrations without a patch', async () => {
    const r = await run(['serve', '2'], { WF_CYCLIC: '0.3', WF_PATCH_QUEUE: `${patch('v2.o')};${patch('v3.o')}` });
    expect(r.lines.filter((l) => 'value' in l && !('scenario' in l)).map((l) => l.value)).toEqual([2, 3]);
    const triggers = events(r.log, 'trigger');
    expect(triggers.length).toBeGreaterThanOrEqual(4);
    expect(triggers.every((t) => t.source === 'cyclic')).toBe(true);
    expect(triggers.slice(0, 3).map((t) => t.patch)).toEqual([patch('v2.o'), patch('v3.o'), null]);
    expect(events(r.log, 'done').length).toBe(triggers.length);
  });

  it('local mode on a kernel without generations rejects the patch with the reason and keeps running', async () => {
    const r = await run(['bad', patch('v2.o'), patch('v2.o')], { WF_GLOBAL: '0' });
    expect(events(r.log, 'init')[0]).toMatchObject({ mode: 'local', generations: false });
    const steps = r.lines.filter((l) => 'step' in l);
    expect(steps[0]).toMatchObject({ event: 'rejected', value: 1 });
    expect(steps[0].reason).toContain('no address-space generations');
  });
});

/** Byte surgery on a copy of a good patch object, for the loader's validation. */
class Elf {
  constructor(readonly buf: Buffer) {}
  get shoff(): number { return Number(this.buf.readBigUInt64LE(0x28)); }
  get shnum(): number { return this.buf.readUInt16LE(0x3c); }
  sh(i: number): number { return this.shoff + i * 64; }
  type(i: number): number { return this.buf.readUInt32LE(this.sh(i) + 4); }
  offset(i: number): number { return Number(this.buf.readBigUInt64LE(this.sh(i) + 24)); }
  size(i: number): number { return Number(this.buf.readBigUInt64LE(this.sh(i) + 32)); }
  info(i: number): number { return this.buf.readUInt32LE(this.sh(i) + 44); }
  name(i: number): string {
    const strtab = this.offset(this.buf.readUInt16LE(0x3e));
    const at = strtab + this.buf.readUInt32LE(this.sh(i));
    return this.buf.toString('latin1', at, this.buf.indexOf(0, at));
  }
  find(name: string): number {
    for (let i = 0; i < this.shnum; i++) if (this.name(i) === name) return i;
    throw new Error(`no section ${name}`);
  }
}

describe('libwfpatch rejects bad patches and keeps serving (host)', () => {
  it('truncated, wrong build-id, unknown relocation, out-of-bounds offsets, wrong machine/type', async () => {
    const good = await readFile(patch('v2.o'));
    const variants: [string, (e: Elf) => Buffer, RegExp][] = [
      ['truncated', (e) => e.buf.subarray(0, Math.floor(e.buf.length / 2)), /truncated/],
      ['tiny', (e) => e.buf.subarray(0, 20), /truncated: 20 bytes/],
      ['shoff', (e) => { e.buf.writeBigUInt64LE(BigInt(e.buf.length + 4096), 0x28); return e.buf; }, /truncated: section headers/],
      ['secoff', (e) => { e.buf.writeBigUInt64LE(0x7fff0000n, e.sh(e.find('.text.version')) + 24); return e.buf; }, /section \.text\.version .* beyond the file/],
      ['symvalue', (e) => {
        const st = e.find('.symtab');
        for (let k = 1; k < e.size(st) / 24; k++) {
          const at = e.offset(st) + k * 24;
          if (e.buf.readUInt16LE(at + 6) === e.find('.text.version') && (e.buf[at + 4] & 0xf) === 2) {
            e.buf.writeBigUInt64LE(0x100000n, at + 8);
          }
        }
        return e.buf;
      }, /symbol version: .* outside its section/],
      ['reloffset', (e) => {
        const rela = e.find('.rela.text.version');
        e.buf.writeBigUInt64LE(0x100000n, e.offset(rela));
        return e.buf;
      }, /relocation at 0x100000 outside \.text\.version/],
      ['relsym', (e) => {
        const rela = e.find('.rela.text.version');
        e.buf.writeUInt32LE(0xffff, e.offset(rela) + 12); // symbol index in r_info's high half
        return e.buf;
      }, /names symbol 65535/],
      ['machine', (e) => { e.buf.writeUInt16LE(3, 0x12); return e.buf; }, /machine 3, expected EM_X86_64/],
      ['exec', (e) => { e.buf.writeUInt16LE(2, 0x10); return e.buf; }, /expected ET_REL/],
      ['class', (e) => { e.buf[4] = 1; return e.buf; }, /expected ELFCLASS64/],
      ['notelf', () => Buffer.from('#!/bin/sh\necho not a patch\n'), /not an ELF file/],
    ];
    const files: string[] = [];
    for (const [name, mutate] of variants) {
      const file = join(tmp, `bad-${name}.o`);
      await writeFile(file, mutate(new Elf(Buffer.from(good))));
      files.push(file);
    }
    files.push(patch('wrongid.o'), patch('badreloc.o'), join(tmp, 'missing.o'));
    const want = [...variants.map((v) => v[2]), /wrong build-id: the patch is for 0123456789abcdef/, /unsupported relocation type 25/, /cannot open/];
    const r = await run(['bad', patch('hand-v2.o'), ...files]);
    const steps = r.lines.filter((l) => 'step' in l);
    expect(steps).toHaveLength(files.length + 1);
    steps.slice(0, -1).forEach((s, i) => {
      expect(s.event, String(s.step)).toBe('rejected');
      expect(s.reason, String(s.step)).toMatch(want[i]);
      expect(s.value).toBe(1); // still serving the old code
    });
    // Then a good patch (made by hand in the documented format) still applies.
    expect(steps.at(-1)).toMatchObject({ event: 'done', value: 2 });
    expect(r.exitCode).toBe(0);
    expect(events(r.log, 'totals')[0]).toMatchObject({ applied: 1, rejected: files.length });
  });
});

describe('libwfpatch loader under mutation (host, AddressSanitizer + UBSan)', () => {
  it('5,000 mutated patch objects: each loads or is rejected with a reason; no crash, no leak', async () => {
    const r = await execa(join(build, 'fuzzload'), [patch('fuzz-target.o'), '5000', '20261127'], { reject: false, timeout: 120_000 });
    expect(r.exitCode, r.stderr.slice(0, 2000)).toBe(0);
    expect(r.stderr).not.toMatch(/ERROR|runtime error|rejected without a reason/);
    const summary = JSON.parse(r.stdout);
    expect(summary.iterations).toBe(5000);
    expect(summary.rejected).toBeGreaterThan(1000);
    expect(summary.loaded).toBeGreaterThan(100); // mutations that stay valid are applied for real
  });
});

describe('wfbuild apply (host, global mode)', () => {
  it('applies bundles to a running process, reports status, rolls back, and reports rejections', async () => {
    const logfile = join(tmp, 'serve.jsonl');
    const server = execa(wftest, ['serve', '60'], { env: { WF_GLOBAL: '1', WF_LOGFILE: logfile }, reject: false });
    const pid = server.pid!;
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      const applied = await execa(wfbuild, ['apply', '--pid', String(pid), patch('v2.o'), patch('v3.o')], { reject: false });
      expect(applied.exitCode, applied.stderr).toBe(0);
      expect(applied.stdout).toMatch(/loaded: 1 function\(s\)/);
      expect(applied.stdout).toMatch(/done: apply in .* ms \(2 patch\(es\) applied\)/);
      const status = await execa(wfbuild, ['apply', '--pid', String(pid), '--status', '--json']);
      expect(JSON.parse(status.stdout)).toMatchObject({ event: 'status', mode: 'global', depth: 2 });
      const rolled = await execa(wfbuild, ['apply', '--pid', String(pid), '--rollback'], { reject: false });
      expect(rolled.exitCode).toBe(0);
      const bad = await execa(wfbuild, ['apply', '--pid', String(pid), patch('wrongid.o')], { reject: false });
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toMatch(/rejected by process \d+: wrong build-id/);
    } finally {
      server.kill('SIGTERM');
      await server;
    }
    const served = (await readFile(logfile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(served.filter((e) => e.event === 'done')).toHaveLength(3);
  });

  it('wfpatch-ctl (the C client for the guest): done is 0, rejected is 3, no socket is 2', async () => {
    const ctl = join(runtime, 'build/wfpatch-ctl');
    const server = execa(wftest, ['serve', '30'], { env: { WF_GLOBAL: '1', WF_LOGFILE: join(tmp, 'ctl.jsonl') }, reject: false });
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      const pid = String(server.pid);
      const ok = await execa(ctl, [pid, 'apply', patch('v2.o')], { reject: false });
      expect(ok.exitCode).toBe(0);
      expect(JSON.parse(ok.stdout.trim().split('\n').at(-1)!)).toMatchObject({ event: 'done', depth: 1 });
      const bad = await execa(ctl, [pid, 'apply', patch('badreloc.o')], { reject: false });
      expect(bad.exitCode).toBe(3);
      expect(bad.stdout).toContain('unsupported relocation type 25');
    } finally {
      server.kill('SIGTERM');
      await server;
    }
    const none = await execa(ctl, [String(process.pid), 'status'], { reject: false });
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('has no libwfpatch control socket');
  });

  it('fails clearly without --pid, for a process without the runtime, and for a missing file', async () => {
    const noPid = await execa(wfbuild, ['apply', patch('v2.o')], { reject: false });
    expect(noPid.exitCode).toBe(2);
    expect(noPid.stderr).toContain('--pid PID is required');
    const noSocket = await execa(wfbuild, ['apply', '--pid', String(process.pid), '--status'], { reject: false });
    expect(noSocket.exitCode).toBe(2);
    expect(noSocket.stderr).toContain('has no libwfpatch control socket');
    const missing = await execa(wfbuild, ['apply', '--pid', String(process.pid), join(tmp, 'nope.o')], { reject: false });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('cannot read');
  });
});
