import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildKernel, runInVm, consoleTail } from '../pipeline/src/vm/index.ts';
import { detectKernelFailure } from '../pipeline/src/vm/console.ts';
import { parseLdd } from '../pipeline/src/vm/libs.ts';
import { guestClockArgs, hostTscKhz, tscKhzFromCpuinfo, tscKhzFromKernelLog } from '../pipeline/src/vm/clock.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;
let dir: string;

/** Writes an executable shell script (run by the guest's busybox sh). */
async function script(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

async function compile(name: string, source: string, flags: string[]): Promise<string> {
  const src = join(dir, `${name}.c`);
  await writeFile(src, source);
  await execa('gcc', ['-O1', '-Wall', '-o', join(dir, name), src, ...flags]);
  return join(dir, name);
}

// Exits with atoi(argv[1]); dynamically linked against libc, libm and (threads) libpthread.
const exitSource = `
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static void *worker(void *arg) { return (void *)(long)(sqrt((double)(long)arg) + 0.5); }
int main(int argc, char **argv) {
  pthread_t t;
  void *ret;
  pthread_create(&t, NULL, worker, (void *)49L);
  pthread_join(t, &ret);
  printf("worker says %ld, HOME=%s\\n", (long)ret, getenv("HOME"));
  return argc > 1 ? atoi(argv[1]) : 0;
}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wfvm-test-'));
  // One-time kernel build (minutes on 2 cores; a cache hit afterwards).
  await buildKernel({ variant: 'debug' });
}, 3_600_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runInVm (debug kernel under QEMU TCG)', () => {
  it('runs a dynamically linked, multi-threaded program and propagates exit codes 0 and 3', async () => {
    const program = await compile('exitwith', exitSource, ['-lm', '-pthread']);
    const zero = await runInVm({ program, args: ['0'], timeoutSec: 120 });
    expect(zero.kernelFailure).toBeNull();
    expect(zero.timedOut).toBe(false);
    expect(zero.exitCode).toBe(0);
    expect(zero.console).toContain('worker says 7, HOME=/root');
    const three = await runInVm({ program, args: ['3'], timeoutSec: 120 });
    expect(three.exitCode).toBe(3);
    expect(three.kernelFailure).toBeNull();
  });

  it('runs a static program with files, environment and a sane /proc, /dev, /tmp and lo', async () => {
    const data = join(dir, 'data.txt');
    await writeFile(data, 'payload-42\n');
    const check = await script(
      'check.sh',
      [
        `[ "$(cat /data/in.txt)" = payload-42 ] || exit 20`,
        `[ "$QUOTED" = "a b'c\\$d" ] || exit 21`,
        `grep -q ' /tmp tmpfs' /proc/mounts || exit 22`,
        `grep -q ' /dev devtmpfs' /proc/mounts || exit 23`,
        `ip addr show lo | grep -q 'inet 127.0.0.1' || exit 24`,
        `[ "$(nproc)" = 2 ] || exit 25`,
        `echo hello > /dev/null && [ -c /dev/ttyS0 ] || exit 26`,
        `exit 0`,
      ].join('\n'),
    );
    const result = await runInVm({
      program: check,
      files: [{ host: data, guest: '/data/in.txt' }],
      env: { QUOTED: "a b'c$d" },
      cpus: 2,
      timeoutSec: 120,
    });
    expect(result.kernelFailure).toBeNull();
    expect(result.exitCode).toBe(0);
  });

  it('brings files written under /results back to outDir', async () => {
    const writer = await script(
      'writer.sh',
      'mkdir -p "$WFVM_RESULTS/sub"\necho \'{"ops":1234}\' > "$WFVM_RESULTS/bench.json"\nhead -c 3000 /proc/kallsyms > "$WFVM_RESULTS/sub/syms.txt"',
    );
    const outDir = join(dir, 'out');
    const result = await runInVm({ program: writer, outDir, timeoutSec: 120 });
    expect(result.exitCode).toBe(0);
    expect(result.results).toEqual(['bench.json', 'sub/syms.txt']);
    expect(JSON.parse(await readFile(join(outDir, 'bench.json'), 'utf8'))).toEqual({ ops: 1234 });
    expect((await readFile(join(outDir, 'sub/syms.txt'))).length).toBe(3000);
    expect((await readdir(outDir)).filter((n) => n.startsWith('.wfvm'))).toEqual([]);
  });

  it('kills a hung guest at the timeout and reports the console tail', async () => {
    const hang = await script('hang.sh', 'echo about-to-hang\nsleep 100000');
    const started = Date.now();
    const result = await runInVm({ program: hang, timeoutSec: 45 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(consoleTail(result.console)).toContain('about-to-hang');
    expect(Date.now() - started).toBeLessThan(90_000);
  });

  it('reports a sysrq-c crash as a kernel failure', async () => {
    const crash = await script('crash.sh', 'echo c > /proc/sysrq-trigger\nexit 0');
    const result = await runInVm({ program: crash, timeoutSec: 120 });
    expect(result.kernelFailure).toMatch(/Kernel panic|sysrq triggered crash|Oops|BUG:/);
    expect(result.exitCode).toBeNull();
    expect(result.timedOut).toBe(false);
  });

  it('reports a kernel WARNING even when the program exits 0', async () => {
    // LKDTM (debug variant) provokes a real WARN_ON through debugfs, which /init mounts.
    const warn = await script('warn.sh', 'echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT\nexit 0');
    const result = await runInVm({ program: warn, timeoutSec: 120 });
    expect(result.exitCode).toBe(0);
    expect(result.kernelFailure).toMatch(/WARNING: CPU: \d+ PID: \d+ at .*lkdtm/);
  });
});

// Prints the clocksource and the smallest step CLOCK_MONOTONIC makes between two reads.
const clockSource = `
#include <stdio.h>
#include <string.h>
#include <time.h>
int main(void) {
  char name[64] = "";
  FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (f) { if (!fgets(name, sizeof(name), f)) name[0] = 0; fclose(f); }
  name[strcspn(name, "\\n")] = 0;
  long best = -1;
  for (int i = 0; i < 2000; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b); while (b.tv_sec == a.tv_sec && b.tv_nsec == a.tv_nsec);
    long d = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
    if (best < 0 || d < best) best = d;
  }
  printf("clocksource=%s resolution_ns=%ld\\n", name, best);
  return 0;
}`;

describe('the guest clock', () => {
  it('is the TSC at the host frequency, with a resolution far below 10 µs (not 4 ms jiffies)', async () => {
    const tscKhz = await hostTscKhz();
    expect(tscKhz, 'the host TSC frequency could not be read (dmesg, /proc/cpuinfo)').toBeGreaterThan(100_000);
    const program = await compile('clockres', clockSource, []);
    const run = await runInVm({ program, timeoutSec: 180 });
    expect(run.exitCode, consoleTail(run.console, 20)).toBe(0);
    const m = /clocksource=(\S*) resolution_ns=(\d+)/.exec(run.console);
    expect(m, consoleTail(run.console, 20)).not.toBeNull();
    expect(m![1]).toBe('tsc');
    expect(Number(m![2])).toBeLessThan(10_000);
  });

  it('reads the TSC frequency from the kernel log or an invariant-TSC cpuinfo', () => {
    const log = '[    0.000019] tsc: Detected 2100.000 MHz processor\n[    1.2] tsc: Refined TSC clocksource calibration: 2099.998 MHz\n';
    expect(tscKhzFromKernelLog(log)).toBe(2_099_998);
    expect(tscKhzFromKernelLog('[    0.000019] tsc: Detected 2100.000 MHz processor\n')).toBe(2_100_000);
    expect(tscKhzFromKernelLog('no tsc here')).toBeUndefined();
    const cpuinfo = (flags: string) => `cpu MHz\t\t: 2100.000\nflags\t\t: fpu ${flags} sse\n`;
    expect(tscKhzFromCpuinfo(cpuinfo('constant_tsc nonstop_tsc tsc_known_freq'))).toBe(2_100_000);
    // Without an invariant TSC of known frequency, "cpu MHz" is the current core clock, not the TSC's.
    expect(tscKhzFromCpuinfo(cpuinfo('constant_tsc'))).toBeUndefined();
    expect(guestClockArgs(2_100_000)).toEqual(['tsc_early_khz=2100000', 'tsc=reliable', 'clocksource=tsc']);
    expect(guestClockArgs(undefined)).toEqual([]);
  });
});

describe('vm run CLI', () => {
  it('exits with the program status and streams its output', async () => {
    const program = join(dir, 'exitwith');
    const result = await execa(wfbuild, ['vm', 'run', '--timeout', '120', '--', program, '3'], { reject: false });
    expect(result.exitCode).toBe(3);
    expect(result.stdout).toContain('worker says 7');
  });

  it('exits 10 on a kernel failure and 11 on a timeout', async () => {
    const crash = join(dir, 'crash.sh');
    const crashed = await execa(wfbuild, ['vm', 'run', '--quiet', '--', crash], { reject: false });
    expect(crashed.exitCode).toBe(10);
    expect(crashed.stderr).toContain('kernel reported a failure');
    const hung = await execa(wfbuild, ['vm', 'run', '--quiet', '--timeout', '45', '--', join(dir, 'hang.sh')], { reject: false });
    expect(hung.exitCode).toBe(11);
    expect(hung.stderr).toContain('about-to-hang');
  });

  it('rejects bad input with a clear message and exit 2, before booting anything', async () => {
    const cases: [string[], RegExp][] = [
      [['vm', 'run', '--', '/nonexistent/prog'], /unknown program/],
      [['vm', 'run', '--', 'no-such-command-xyz'], /unknown program 'no-such-command-xyz'/],
      [['vm', 'run', '--file', '/nonexistent/file', '--', '/bin/true'], /cannot read \/nonexistent\/file/],
      [['vm', 'run', '--cpus', 'two', '--', '/bin/true'], /--cpus must be a positive integer/],
      [['vm', 'run', '--variant', 'fast', '--', '/bin/true'], /--variant must be debug or bench/],
      [['vm', 'run', '--env', 'NOEQUALS', '--', '/bin/true'], /expected K=V/],
      [['vm', 'run', '--env', '1X=2', '--', '/bin/true'], /bad environment variable name/],
      [['vm', 'run', '--file', '/bin/true:relative', '--', '/bin/true'], /must be absolute/],
      [['vm', 'run', '--bogus', '--', '/bin/true'], /--bogus/],
      [['vm', 'run'], /no PROGRAM/],
    ];
    for (const [args, message] of cases) {
      const result = await execa(wfbuild, args, { reject: false });
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(message);
      expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
    }
  });

  it('names the Debian package when QEMU is missing', async () => {
    const result = await execa(process.execPath, [wfbuild, 'vm', 'run', '--', '/bin/true'], {
      reject: false,
      env: { PATH: '/nonexistent' },
      extendEnv: false,
    });
    expect(result.exitCode).toBe(13);
    expect(result.stderr).toContain('qemu-system-x86');
    expect(result.stderr).toContain('apt-get install');
  });
});

describe('console and ldd parsing', () => {
  it('counts only timestamped kernel lines as failures', () => {
    expect(detectKernelFailure('WARNING: from a program\nBUG: also a program\n')).toBeNull();
    expect(detectKernelFailure('[    3.141592] WARNING: CPU: 0 PID: 1 at mm/mmap.c:42 f+0x1/0x2\n')).toContain('mm/mmap.c:42');
    expect(detectKernelFailure('[ 12.5] ======================================================\n[ 12.5] WARNING: possible circular locking dependency detected\n')).toContain('circular');
    expect(detectKernelFailure('[    1.0] BUG: KASAN: use-after-free in foo\n')).toContain('KASAN');
    expect(detectKernelFailure('[    1.0] Run /init as init process\n')).toBeNull();
  });

  it('parses ldd output and rejects missing libraries by name', () => {
    const out = '\tlinux-vdso.so.1 (0x00007ffc)\n\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f00)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f01)\n';
    expect(parseLdd('p', out)).toEqual(['/lib/x86_64-linux-gnu/libm.so.6', '/lib64/ld-linux-x86-64.so.2']);
    expect(() => parseLdd('p', '\tlibgone.so.1 => not found\n')).toThrow(/p needs libgone.so.1/);
  });
});
