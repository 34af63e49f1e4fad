/**
 * Per-binary verdicts. Each manifest names its package's long-running binaries (the servers
 * and the libraries and modules they load) and the other programs it builds, by the sources
 * they come from. A unit's verdict is given per binary; the package's verdict counts only the
 * long-running ones: a change confined to a test program or a command-line tool (samba's
 * CVE-2025-9640 adds a torture test) does not make the server's fix "not text-only". Pure:
 * tested in test/corpus-table.test.ts.
 */
import { basename } from 'node:path';
import type { ObjectReport, Reason } from '../report/types.ts';
import type { LoaderRule } from '../stages/loaded-by.ts';

export interface ProgramRule {
  /** What the sources build, e.g. "smbtorture". */
  readonly name: string;
  /** A regular expression over tree-relative source paths. */
  readonly sources: string;
  readonly why: string;
}

export interface Services {
  /** Long-running binaries by file name (regular expressions), e.g. "^smbd$", "^libldap". */
  readonly longRunning: readonly string[];
  /** Programs that are not the running service, by their sources (compile-only mode, and a fallback). */
  readonly programs: readonly ProgramRule[];
  readonly note: string;
  /**
   * Which program dlopen()s which modules (optional): a module's patch may call what only that
   * program exports (nginx's modules, ngx_pnalloc from nginx). create-diff-object --binary and
   * the loader's dry run resolve through it (--loaded-by, pipeline/src/stages/loaded-by.ts).
   */
  readonly loadedBy?: readonly LoaderRule[];
}

/** What `wfbuild corpus manifest` writes into each manifest (the manifest is the source of truth the driver reads). */
export const defaultServices: Readonly<Record<string, Services>> = {
  memcached: { longRunning: ['^memcached$'], programs: [{ name: 'tests', sources: '^(t|testapp|timedrun|sizes)[/.]', why: 'test programs' }], note: 'one daemon, memcached' },
  openldap: {
    longRunning: ['^slapd$', '^lib(ldap|lber)', '\\.so(\\.|$)'],
    programs: [
      { name: 'client tools', sources: '^clients/', why: 'ldapsearch, ldapmodify, …: run per command' },
      { name: 'tests', sources: '^tests/', why: 'test programs' },
    ],
    note: 'slapd (tools slapadd, slapcat … are the same binary), libldap and liblber (loaded by slapd and every client), overlay and backend modules',
    loadedBy: [
      { modules: '^debian/build/servers/slapd/[^/]+/\\.libs/[^/]+\\.so[.0-9]*$', program: 'debian/build/servers/slapd/.libs/slapd', why: 'moduleload: slapd dlopen()s its backends and overlays (back_mdb.so, …), which take slap_debug, ch_malloc … from slapd' },
      { modules: '^contrib/slapd-modules/.*\\.so[.0-9]*$', program: 'debian/build/servers/slapd/.libs/slapd', why: 'moduleload: contrib modules (pw-sha2, …) are loaded by slapd the same way' },
      { modules: '^(.*/)slapi/\\.libs/libslapi-[^/]+$', program: '$1.libs/slapd', why: 'libslapi needs only libc: it takes libldap\'s ldap_pvt_* from the slapd that loads it' },
    ],
  },
  apache2: {
    longRunning: ['^(apache2|httpd)$', '\\.so$'],
    programs: [{ name: 'support tools', sources: '^support/', why: 'ab, htpasswd, suexec, rotatelogs, …: run per command or per request (suexec)' }],
    note: 'apache2 (httpd) and the modules it loads (mod_*.so)',
    loadedBy: [{ modules: '^modules/.*\\.so$', program: 'apache2', why: 'LoadModule: apache2 dlopen()s mod_*.so, which take ap_* from the apache2 executable (linked with -export-dynamic)' }],
  },
  samba: {
    longRunning: ['^(smbd|nmbd|winbindd|samba)$', '\\.so(\\.|$)'],
    programs: [
      { name: 'smbtorture', sources: '^source4/torture/|^source3/torture/', why: 'the test suite' },
      { name: 'tests', sources: '(^|/)tests?/', why: 'test programs' },
    ],
    note: 'smbd, nmbd, winbindd, samba (AD DC) and the libraries and VFS modules they load',
  },
  mariadb: {
    longRunning: ['^(mariadbd|mysqld)$', '\\.so(\\.|$)'],
    programs: [
      { name: 'client tools', sources: '^client/', why: 'mariadb, mariadb-dump, …: run per command' },
      { name: 'tests', sources: '^(mysql-test|unittest)/', why: 'test programs' },
    ],
    note: 'mariadbd and the plugins and storage engines it loads',
  },
  bind9: {
    longRunning: ['^named$', '\\.so(\\.|$)'],
    programs: [
      { name: 'command-line tools', sources: '^bin/(dig|delv|nsupdate|rndc|check|confgen|dnssec|tools|tests)/', why: 'dig, nsupdate, rndc, named-checkconf, dnssec-*: run per command' },
      { name: 'tests', sources: '(^|/)tests?/', why: 'test programs' },
    ],
    note: 'named and the libraries it loads (libdns, libisc, …)',
  },
  unbound: {
    longRunning: ['^unbound$', '\\.so(\\.|$)'],
    programs: [
      { name: 'command-line tools', sources: '^smallapp/', why: 'unbound-control, unbound-anchor, unbound-checkconf, unbound-host: run per command' },
      { name: 'tests', sources: '^testcode/', why: 'test programs' },
    ],
    note: 'unbound (libunbound is loaded by other programs)',
  },
  squid: {
    longRunning: ['^squid$'],
    programs: [
      { name: 'helpers', sources: '^src/(auth|acl|http/url_rewriters|store/id_rewriters|security/cert_generators|security/cert_validators|log)/.*/|^tools/', why: 'authentication and other helpers, squidclient, cachemgr: separate programs Squid starts or an admin runs' },
      { name: 'tests', sources: '(^|/)tests?/|^test-suite/', why: 'test programs' },
    ],
    note: 'squid (its workers and coordinator are the same binary)',
  },
  nginx: {
    longRunning: ['^nginx$', '\\.so$'],
    programs: [],
    note: 'nginx (master and workers are one binary) and its dynamic modules',
    loadedBy: [{ modules: '^(.*/)?objs/[^/]+\\.so$', program: '$1objs/nginx', why: 'load_module: nginx dlopen()s objs/ngx_*_module.so, which take ngx_* from nginx (linked with -Wl,-E)' }],
  },
  dovecot: {
    longRunning: ['.'],
    programs: [{ name: 'tests', sources: '(^|/)test-[^/]*\\.c$|(^|/)tests?/', why: 'test programs' }],
    note: 'every dovecot binary is a long-running service process (master, imap, pop3, lmtp, auth, …) or a library they load',
    loadedBy: [
      { modules: '^(?:src|pigeonhole/src)/(?:plugins/[^/]+|auth)/\\.libs/lib(?:\\d+_)?(?:auth|authdb|mech)_[^/]+\\.so$', program: 'src/auth/.libs/auth', why: 'auth loads its passdb/userdb and mechanism modules, which take auth_* from the auth process' },
      { modules: '^(?:src|pigeonhole/src)/plugins/[^/]+/\\.libs/lib\\d+_doveadm_[^/]+\\.so$', program: 'src/doveadm/.libs/doveadm', why: 'doveadm loads its plugins, which take doveadm_* from doveadm' },
      { modules: '^(?:src|pigeonhole/src)/plugins/[^/]+/\\.libs/lib\\d+_[^/]+\\.so$', program: 'src/imap/.libs/imap', why: 'mail_plugins: imap (like pop3, lmtp) dlopen()s the mail plugins, which take mail_*, i_* from the libdovecot-storage and libdovecot it links' },
    ],
  },
  mosquitto: {
    longRunning: ['^mosquitto$', '\\.so(\\.|$)'],
    programs: [
      { name: 'client tools', sources: '^client/|^apps/', why: 'mosquitto_pub, mosquitto_sub, mosquitto_passwd, mosquitto_ctrl: run per command' },
      { name: 'tests', sources: '^test/', why: 'test programs' },
    ],
    note: 'the mosquitto broker and the plugins it loads',
  },
  exim4: {
    longRunning: ['^exim4?$'],
    programs: [
      { name: 'utilities', sources: '^(exim_monitor|util)/|(^|/)src/(exim_dbmbuild|exim_dbutil|exim_lock)\\.c$', why: 'eximon, exim_dbmbuild, exim_tidydb, exim_lock, …: run per command' },
      { name: 'tests', sources: '^test/', why: 'test programs' },
    ],
    note: 'exim (the daemon and every delivery process are the one binary, exim4-daemon-light and -heavy builds)',
  },
  openssh: {
    longRunning: ['^sshd$'],
    programs: [
      { name: 'client tools', sources: '(^|/)(ssh|scp|sftp|ssh-keygen|ssh-add|ssh-keyscan|ssh-keysign|ssh-pkcs11-helper|ssh-sk-helper|sftp-server|sftp-server-main|ssh-agent|gnome-ssh-askpass2|progressmeter|sftp-client|sftp-common|sftp-glob|sftp-usergroup|mux|clientloop|readconf|sshconnect|sshconnect2|scp)\\.c$', why: 'ssh, scp, sftp, ssh-keygen, ssh-agent, sftp-server, …: run per command or per session' },
      { name: 'tests', sources: '^regress/', why: 'test programs' },
    ],
    note: 'sshd (the listener; each connection re-executes sshd, so new connections run the installed file)',
  },
  cups: {
    longRunning: ['^cupsd$', '^libcups'],
    programs: [
      { name: 'filters, backends and commands', sources: '^(backend|berkeley|systemv|filter|notifier|monitor|tools|ppdc|examples)/', why: 'run per print job or per command' },
      { name: 'tests', sources: '(^|/)(test|testsub|testipp|testhttp|testlang|testarray|testcups|testppd|testfile|unittests)[^/]*\\.c$|^test/', why: 'test programs' },
    ],
    note: 'cupsd and libcups (loaded by cupsd and by every client)',
  },
  strongswan: {
    longRunning: ['^(charon|charon-systemd|starter)$', '\\.so(\\.|$)'],
    programs: [
      { name: 'command-line tools', sources: '^src/(pki|swanctl|stroke|scepclient|ipsec|_updown|pool|conftest|sw-collector|charon-cmd|xfrmi|pt-tls-client|sec-updater|tpm_extendpcr|aikgen)/', why: 'pki, swanctl, ipsec, stroke, …: run per command' },
      { name: 'tests', sources: '(^|/)tests?/|^testing/', why: 'test programs' },
    ],
    note: 'charon (the IKE daemon) with starter, libcharon, libstrongswan and the plugins they load',
    loadedBy: [
      { modules: '^src/(?:libstrongswan|libcharon|libtnccs|libtpmtss)/plugins/.*\\.so$', program: 'src/charon/.libs/charon', why: 'charon dlopen()s its plugins (libstrongswan-*.so), which link only libc and take chunk_*, lib, charon … from the libstrongswan and libcharon charon links' },
    ],
  },
  haproxy: {
    longRunning: ['^haproxy$'],
    programs: [
      { name: 'tools', sources: '^(admin|dev|contrib)/', why: 'halog, …: run per command' },
      { name: 'tests', sources: '^(tests|reg-tests)/', why: 'test programs' },
    ],
    note: 'haproxy (master and workers are one binary)',
  },
  frr: {
    longRunning: ['^(zebra|bgpd|ospfd|ospf6d|ripd|ripngd|isisd|fabricd|pimd|pim6d|ldpd|nhrpd|eigrpd|babeld|sharpd|pbrd|staticd|bfdd|vrrpd|pathd|mgmtd|watchfrr)$', '\\.so(\\.|$)'],
    programs: [
      { name: 'vtysh and tools', sources: '^(vtysh|tools)/', why: 'vtysh, the shell an admin runs per session; tools' },
      { name: 'tests', sources: '^tests/', why: 'test programs' },
    ],
    note: 'the routing daemons (zebra, bgpd, ospfd, …, watchfrr), libfrr and the modules they load',
  },
  nodejs: { longRunning: ['^node$', '\\.so(\\.|$)'], programs: [{ name: 'tests', sources: '^test/', why: 'test programs' }], note: 'node (a running server process is node)' },
};

export function servicesFor(pkg: string): Services | undefined {
  return defaultServices[pkg];
}

export interface BinaryGroup {
  /** A binary's name, or for compile-only objects the program their sources build. */
  readonly binary: string;
  readonly longRunning: boolean;
  readonly objects: ObjectReport[];
  readonly reasons: Reason[];
}

/** The service's name for objects no program rule claims (compile-only mode knows no binaries). */
export const serviceGroup = 'the service';

function programOf(services: Services, source: string): ProgramRule | undefined {
  return services.programs.find((p) => new RegExp(p.sources).test(source));
}

export function isLongRunning(services: Services, binary: string): boolean {
  return services.longRunning.some((re) => new RegExp(re).test(basename(binary)));
}

/**
 * The objects (and their reasons) grouped by the binary they go into: the link map's binaries
 * when the full pipeline knows them, else the program rules by source, else the service.
 */
export function groupByBinary(services: Services, objects: readonly ObjectReport[], reasons: readonly Reason[]): BinaryGroup[] {
  const groups = new Map<string, BinaryGroup>();
  const add = (binary: string, longRunning: boolean, o: ObjectReport) => {
    const g = groups.get(binary) ?? { binary, longRunning, objects: [], reasons: [] };
    if (!g.objects.includes(o)) g.objects.push(o);
    groups.set(binary, g);
  };
  for (const o of objects) {
    const rule = programOf(services, o.source);
    if (o.binaries.length > 0) {
      for (const b of o.binaries) add(b, rule === undefined && isLongRunning(services, b), o);
    } else {
      add(rule?.name ?? serviceGroup, rule === undefined, o);
    }
  }
  for (const g of groups.values()) {
    for (const r of reasons) {
      const mine = r.object === null ? r.what.includes(g.binary) : g.objects.some((o) => o.object === r.object);
      if (mine) g.reasons.push(r);
    }
  }
  return [...groups.values()];
}
