// The debian variant's configuration, without building it: Debian's amd64 configuration with
// modules off, and fragments that change only what the guest build needs (no memory-management
// option differs from what Debian ships). Fast: reads files only.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { repoRoot } from '../pipeline/src/paths.ts';
import { configFragments, parseConfig } from '../pipeline/src/kernel/config.ts';
import { readDebianConfig, withoutModules } from '../pipeline/src/kernel/debian-config.ts';

const configDir = join(repoRoot, 'kernel/config');

/** Options the debian variant may set differently from Debian, and why (see kernel/README.md). */
const allowedChanges: Record<string, string> = {
  CONFIG_LOCALVERSION: 'package name linux-image-6.1.x-wfpatch',
  CONFIG_DEBUG_INFO_NONE: 'no debug information (build time)',
  CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT: 'no debug information (build time)',
  CONFIG_DEBUG_INFO_BTF: 'no debug information (build time)',
  CONFIG_AS_GENERATIONS: 'the extension',
};

describe('debian variant configuration', () => {
  it('turns every module off (not into built-ins) and modules support off', () => {
    const text = withoutModules('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_MODULES=y\nCONFIG_S="m"\n');
    expect(text).toBe('CONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_C is not set\n# CONFIG_MODULES is not set\nCONFIG_S="m"\n');
  });

  it('merges wfgen.config and debian.config on Debian\'s configuration (no base.config)', async () => {
    const names = (await configFragments(configDir, 'debian')).map((f) => f.name);
    expect(names).toEqual(['wfgen.config', 'debian.config']);
    expect((await configFragments(configDir, 'debian-modules')).map((f) => f.name)).toEqual(['wfgen.config', 'debian-modules.config']);
    const debugNames = (await configFragments(configDir, 'debug')).map((f) => f.name);
    expect(debugNames).toEqual(['base.config', 'wfgen.config', 'debug.config']);
  });

  it('changes no option Debian ships except modules made built-in and the listed ones', async () => {
    const debian = parseConfig(await readDebianConfig());
    const changed: string[] = [];
    const fragments = [...(await configFragments(configDir, 'debian')), ...(await configFragments(configDir, 'debian-modules'))];
    for (const fragment of fragments) {
      for (const [key, value] of parseConfig(fragment.content)) {
        const shipped = debian.get(key) ?? 'n';
        const same = shipped === value || (shipped === 'm' && value === 'y');
        if (!same && !(key in allowedChanges)) changed.push(`${key}: Debian ${shipped}, ${fragment.name} ${value}`);
      }
    }
    expect(changed).toEqual([]);
    // The features the extension must live with are on in Debian's configuration.
    for (const key of ['CONFIG_TRANSPARENT_HUGEPAGE', 'CONFIG_KSM', 'CONFIG_NUMA_BALANCING', 'CONFIG_USERFAULTFD', 'CONFIG_MEMCG', 'CONFIG_SWAP', 'CONFIG_PAGE_TABLE_ISOLATION', 'CONFIG_PREEMPT_DYNAMIC', 'CONFIG_SLUB']) {
      expect(debian.get(key), key).toBe('y');
    }
  });

  it('builds in what a Debian 12 machine needs to mount its root (Debian builds these as modules)', async () => {
    const debian = parseConfig(await readDebianConfig());
    const fragment = parseConfig((await configFragments(configDir, 'debian')).map((f) => f.content).join('\n'));
    // virtio/SCSI/SATA/IDE/NVMe disks, ext4, LVM, the EFI system partition; test/kernel-install.test.ts boots one.
    for (const key of ['CONFIG_VIRTIO_PCI', 'CONFIG_VIRTIO_BLK', 'CONFIG_SCSI_VIRTIO', 'CONFIG_BLK_DEV_SD', 'CONFIG_SATA_AHCI', 'CONFIG_ATA_PIIX', 'CONFIG_BLK_DEV_NVME', 'CONFIG_EXT4_FS', 'CONFIG_BLK_DEV_DM', 'CONFIG_VFAT_FS', 'CONFIG_NLS_CODEPAGE_437', 'CONFIG_NLS_ASCII']) {
      expect(debian.get(key), key).toBe('m');
      expect(fragment.get(key), key).toBe('y');
    }
  });

  it('the debug variant turns the same features on, so CI runs the feature tests', async () => {
    const debug = parseConfig((await configFragments(configDir, 'debug')).map((f) => f.content).join('\n'));
    for (const key of ['CONFIG_TRANSPARENT_HUGEPAGE', 'CONFIG_KSM', 'CONFIG_NUMA', 'CONFIG_NUMA_EMU', 'CONFIG_NUMA_BALANCING', 'CONFIG_USERFAULTFD', 'CONFIG_SWAP', 'CONFIG_ZRAM', 'CONFIG_MEMCG', 'CONFIG_VM_EVENT_COUNTERS', 'CONFIG_AS_GENERATIONS']) {
      expect(debug.get(key), key).toBe('y');
    }
  });
});
