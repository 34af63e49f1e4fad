import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { debSrcStanzas } from '../pipeline/src/setup/apt.ts';

const wfbuild = new URL('../pipeline/bin/wfbuild', import.meta.url).pathname;

describe('wfbuild CLI', () => {
  it('lists commands and exit codes with --help', async () => {
    const result = await execa(wfbuild, ['--help']);
    expect(result.stdout).toContain('setup');
    expect(result.stdout).toContain('Exit codes');
  });

  it('rejects an unknown command with exit 2 and no stack trace', async () => {
    const result = await execa(wfbuild, ['frobnicate'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("unknown command 'frobnicate'");
    expect(result.stderr).not.toMatch(/at .*\.ts:\d+/);
  });

  it('leaves --help after -- to the program instead of printing its own help', async () => {
    const result = await execa(wfbuild, ['setup', '--', '--help'], { reject: false });
    expect(result.stdout).not.toContain('Usage: wfbuild setup');
    expect(result.exitCode).toBe(2);
  });

  it('rejects an unknown option with exit 2', async () => {
    const result = await execa(wfbuild, ['setup', '--bogus'], { reject: false });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('--bogus');
  });
});

describe('deb-src derivation', () => {
  it('turns deb stanzas into deb-src stanzas with the same mirrors', () => {
    const src = debSrcStanzas(
      'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n',
    );
    expect(src.match(/Types: deb-src/g)).toHaveLength(2);
    expect(src).toContain('Suites: bookworm-security');
    expect(src).not.toMatch(/Types: deb$/m);
  });
});
