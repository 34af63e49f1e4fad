/**
 * A fine clock for the guest. Under TCG the guest kernel cannot calibrate its TSC (no HPET,
 * no ACPI PM timer, and the PIT calibration fails), marks it unstable and falls back to
 * refined-jiffies: every clock read then moves in 4 ms steps, too coarse for latency
 * percentiles. QEMU's TCG returns the host's TSC to the guest's rdtsc, so telling the guest
 * the host's TSC frequency (tsc_early_khz) gives it the `tsc` clocksource with nanosecond
 * resolution; tsc=reliable keeps the clocksource watchdog (which would compare it against
 * jiffies that lag under emulation) from marking it unstable again.
 */
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';

/** The kernel's own figure: the refined calibration where present, else the first detection. */
export function tscKhzFromKernelLog(text: string): number | undefined {
  const refined = /tsc: Refined TSC clocksource calibration: (\d+)\.(\d{3}) MHz/.exec(text);
  const detected = /tsc: Detected (\d+)\.(\d{3}) MHz processor/.exec(text);
  const m = refined ?? detected;
  return m ? Number(m[1]) * 1000 + Number(m[2]) : undefined;
}

/** With an invariant TSC (constant_tsc) on a virtual CPU, /proc/cpuinfo's MHz is the TSC's. */
export function tscKhzFromCpuinfo(text: string): number | undefined {
  const flags = /^flags\s*:(.*)$/m.exec(text)?.[1]?.split(/\s+/) ?? [];
  if (!flags.includes('constant_tsc') || !flags.includes('tsc_known_freq')) return undefined;
  const mhz = /^cpu MHz\s*:\s*(\d+)\.(\d{3})/m.exec(text);
  return mhz ? Number(mhz[1]) * 1000 + Number(mhz[2]) : undefined;
}

let memo: Promise<number | undefined> | undefined;

/**
 * The host's TSC frequency in kHz, or undefined when it cannot be told (then the guest keeps
 * its coarse clock, and whoever reports latencies must check the resolution it prints).
 * WFPATCH_TSC_KHZ overrides.
 */
export function hostTscKhz(): Promise<number | undefined> {
  memo ??= (async () => {
    const forced = Number(process.env.WFPATCH_TSC_KHZ);
    if (Number.isInteger(forced) && forced > 0) return forced;
    const dmesg = await execa('dmesg', [], { reject: false });
    const fromLog = dmesg.exitCode === 0 ? tscKhzFromKernelLog(dmesg.stdout) : undefined;
    if (fromLog !== undefined) return fromLog;
    return tscKhzFromCpuinfo(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''));
  })();
  return memo;
}

/** Kernel command-line words that give the guest the host's TSC as its clocksource. */
export function guestClockArgs(tscKhz: number | undefined): string[] {
  return tscKhz === undefined ? [] : [`tsc_early_khz=${tscKhz}`, 'tsc=reliable', 'clocksource=tsc'];
}
