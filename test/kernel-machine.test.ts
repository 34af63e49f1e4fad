// The pure parts of the install test's Debian 12 PC (pipeline/src/kernel/machine.ts): GRUB's
// settings, the boot-check unit, the partition table. The PC itself is booted by
// test/kernel-install.test.ts.
import { describe, expect, it } from 'vitest';
import { bootCheckUnit, grubDefaults, partitionTable, withSettings } from '../pipeline/src/kernel/machine.ts';

describe('the install test machine', () => {
  it('sets GRUB variables in place of Debian\'s lines, commented or not, keeping the rest', () => {
    const debian = 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX=""\n#GRUB_TERMINAL=console\n# a comment\n';
    const out = withSettings(debian, grubDefaults);
    expect(out).toContain('GRUB_DEFAULT=0\n');
    expect(out).toContain('# a comment\n');
    expect(out).not.toContain('quiet');
    expect(out).not.toContain('GRUB_TIMEOUT=5');
    expect(out).not.toContain('#GRUB_TERMINAL');
    expect(out.match(/^GRUB_CMDLINE_LINUX=/gm)).toHaveLength(1);
    expect(out).toContain('GRUB_CMDLINE_LINUX="console=ttyS0,115200"\n');
    expect(out.endsWith('\n')).toBe(true);
  });

  it('runs the boot check once multi-user.target is reached, its output on the console', () => {
    const unit = bootCheckUnit('/usr/local/sbin/check');
    expect(unit).toContain('After=multi-user.target');
    expect(unit).toContain('WantedBy=multi-user.target');
    expect(unit).toContain('Type=oneshot');
    expect(unit).toContain('ExecStart=/usr/local/sbin/check');
    expect(unit).toContain('StandardOutput=journal+console');
  });

  it('leaves the first MiB before the root partition for GRUB\'s core image', () => {
    expect(partitionTable).toMatch(/^label: dos\n/);
    expect(partitionTable).toContain('start=2048, type=83, bootable');
  });
});
