/**
 * One boot of the install test's Debian 12 PC (machine.ts) under QEMU/TCG, as a BIOS PC:
 * SeaBIOS → GRUB from the disk's boot sector → GRUB's default entry.
 */
import { execa } from 'execa';

export interface BootOptions {
  readonly cpus?: number;
  readonly memMiB?: number;
  readonly timeoutSec?: number;
  /** Serial console output as it arrives. */
  readonly onConsole?: (text: string) => void;
}

export interface BootResult {
  /** The serial console: GRUB, the kernel log, systemd, the boot check's output. */
  readonly console: string;
  /** False when the machine did not power off within the time limit. */
  readonly poweredOff: boolean;
}

/**
 * One boot of the machine's disk under QEMU/TCG as a BIOS PC (SeaBIOS → GRUB from the boot
 * sector → the default menu entry), the disk on virtio, no network, the serial port on
 * stdout; it ends when the machine powers off (-no-reboot) or at the time limit.
 */
export async function bootMachine(image: string, opts: BootOptions = {}): Promise<BootResult> {
  const args = [
    '-machine', 'pc', '-accel', 'tcg', '-cpu', 'max',
    '-smp', String(opts.cpus ?? 2), '-m', String(opts.memMiB ?? 1536),
    '-drive', `file=${image},format=raw,if=virtio`,
    '-nic', 'none', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
  ];
  const child = execa('qemu-system-x86_64', args, { reject: false, timeout: (opts.timeoutSec ?? 1200) * 1000, buffer: false, stdin: 'ignore' });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    text += s;
    opts.onConsole?.(s);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  const done = await child;
  return { console: text, poweredOff: !done.timedOut && done.exitCode === 0 };
}
