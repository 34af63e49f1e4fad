/**
 * services.loadedBy in a corpus manifest (corpus/README.md): which program dlopen()s which
 * modules, so create-diff-object --binary and `wfpatch-ctl check` resolve a module's references
 * through it (--loaded-by). Parsing, validation and the rule's mapping to files: pure.
 */
import { describe, expect, it } from 'vitest';
import { checkManifest, readManifest } from '../pipeline/src/corpus/manifest.ts';
import { servicesFor } from '../pipeline/src/corpus/services.ts';
import { loadedByArgs, loadingPrograms, siblingPath } from '../pipeline/src/stages/loaded-by.ts';
import { UserError } from '../pipeline/src/cli/errors.ts';

const base = { schema: 1, package: 'nginx', baseVersion: '1.22.1-9+deb12u9', units: [] };
const services = (loadedBy: unknown) => ({ ...base, services: { longRunning: ['^nginx$'], programs: [], note: '', loadedBy } });

describe('services.loadedBy', () => {
  it('nginx.json names nginx as the program that loads objs/*.so, as the generator writes it', async () => {
    const m = await readManifest('nginx');
    expect(m.services?.loadedBy).toEqual([expect.objectContaining({ modules: '^(.*/)?objs/[^/]+\\.so$', program: '$1objs/nginx' })]);
    expect(servicesFor('nginx')?.loadedBy).toEqual(m.services?.loadedBy);
    // manifests without the field stay valid (the change is additive)
    expect((await readManifest('memcached')).services?.loadedBy).toBeUndefined();
  });

  it('maps each module to its loading program, and nothing else', async () => {
    const rules = (await readManifest('nginx')).services!.loadedBy!;
    expect(loadingPrograms(rules, 'debian/build-bin/objs/ngx_mail_module.so')).toEqual(['debian/build-bin/objs/nginx']);
    expect(loadingPrograms(rules, 'debian/build-bin/objs/ngx_stream_module.so')).toEqual(['debian/build-bin/objs/nginx']);
    expect(loadingPrograms(rules, 'objs/ngx_mail_module.so')).toEqual(['objs/nginx']);
    // the program itself, and the Perl module (perl loads it, not nginx): no loader
    expect(loadingPrograms(rules, 'debian/build-bin/objs/nginx')).toEqual([]);
    expect(loadingPrograms(rules, 'debian/build-bin/objs/src/http/modules/perl/blib/arch/auto/nginx/nginx.so')).toEqual([]);
    expect(loadingPrograms(undefined, 'debian/build-bin/objs/ngx_mail_module.so')).toEqual([]);
    // several rules: each program once, in rule order
    const two = [...rules, { modules: '\\.so$', program: 'sbin/other' }, { modules: 'mail', program: 'sbin/other' }];
    expect(loadingPrograms(two, 'a/objs/ngx_mail_module.so')).toEqual(['a/objs/nginx', 'sbin/other']);
    expect(loadedByArgs(['/x/nginx', '/y/other'])).toEqual(['--loaded-by', '/x/nginx', '--loaded-by', '/y/other']);
  });

  it('strongswan: charon loads the plugins of libstrongswan and libcharon; the libraries and charon itself have no loader', async () => {
    const m = await readManifest('strongswan');
    expect(m.services?.loadedBy).toEqual(servicesFor('strongswan')?.loadedBy);
    const rules = m.services!.loadedBy!;
    expect(loadingPrograms(rules, 'src/libstrongswan/plugins/constraints/.libs/libstrongswan-constraints.so')).toEqual(['src/charon/.libs/charon']);
    expect(loadingPrograms(rules, 'src/libcharon/plugins/eap_mschapv2/.libs/libstrongswan-eap-mschapv2.so')).toEqual(['src/charon/.libs/charon']);
    expect(loadingPrograms(rules, 'src/libstrongswan/.libs/libstrongswan.so.0.0.0')).toEqual([]);
    expect(loadingPrograms(rules, 'src/charon/.libs/charon')).toEqual([]);
  });

  it('dovecot: auth modules by auth, doveadm plugins by doveadm, mail plugins by imap; libraries and programs by none', async () => {
    const m = await readManifest('dovecot');
    expect(m.services?.loadedBy).toEqual(servicesFor('dovecot')?.loadedBy);
    const rules = m.services!.loadedBy!;
    expect(loadingPrograms(rules, 'src/plugins/acl/.libs/lib01_acl_plugin.so')).toEqual(['src/imap/.libs/imap']);
    expect(loadingPrograms(rules, 'pigeonhole/src/plugins/imapsieve/.libs/lib95_imap_sieve_plugin.so')).toEqual(['src/imap/.libs/imap']);
    expect(loadingPrograms(rules, 'src/plugins/acl/.libs/lib10_doveadm_acl_plugin.so')).toEqual(['src/doveadm/.libs/doveadm', 'src/imap/.libs/imap']);
    expect(loadingPrograms(rules, 'src/auth/.libs/libauthdb_ldap.so')).toEqual(['src/auth/.libs/auth']);
    expect(loadingPrograms(rules, 'src/plugins/var-expand-crypt/.libs/lib20_auth_var_expand_crypt.so')).toEqual(['src/auth/.libs/auth', 'src/imap/.libs/imap']);
    // libdovecot, auth's own library, and the programs: found through DT_NEEDED, not loaded
    expect(loadingPrograms(rules, 'src/lib-dovecot/.libs/libdovecot.so.0.0.0')).toEqual([]);
    expect(loadingPrograms(rules, 'src/auth/.libs/libstats_auth.so')).toEqual([]);
    expect(loadingPrograms(rules, 'src/imap/.libs/imap')).toEqual([]);
  });

  it('finds the program next to the module in the same build copy', () => {
    const mod = 'debian/build-bin/objs/ngx_mail_module.so';
    expect(siblingPath(`/c/orig/k/linked/${mod}`, mod, 'debian/build-bin/objs/nginx')).toBe('/c/orig/k/linked/debian/build-bin/objs/nginx');
  });

  it('rejects a malformed rule with a clear error', () => {
    expect(checkManifest(services([{ modules: '\\.so$', program: 'objs/nginx' }]), 'm.json').services?.loadedBy).toHaveLength(1);
    for (const bad of [{ modules: '(', program: 'objs/nginx' }, { modules: '\\.so$', program: '/usr/sbin/nginx' }, { modules: '\\.so$' }, { modules: '\\.so$', program: '' }, { modules: '\\.so$', program: 'x', why: 3 }]) {
      expect(() => checkManifest(services([bad]), 'm.json')).toThrow(UserError);
    }
    expect(() => checkManifest(services('objs/nginx'), 'm.json')).toThrow(/m\.json: services\.loadedBy must list \{modules/);
  });
});
