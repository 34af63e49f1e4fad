/** A Debian package wfpatch needs, and why (printed during set-up). */
export interface RequiredPackage {
  readonly name: string;
  readonly why: string;
}

export const requiredPackages: readonly RequiredPackage[] = [
  { name: 'build-essential', why: 'gcc, make and libc headers for every native build' },
  { name: 'linux-source-6.1', why: "Debian's Linux 6.1 source, patched with the generation extension" },
  { name: 'flex', why: 'kernel build (kconfig lexer)' },
  { name: 'bison', why: 'kernel build (kconfig parser)' },
  { name: 'bc', why: 'kernel build (timeconst)' },
  { name: 'libssl-dev', why: 'kernel build (sign-file, certificates)' },
  { name: 'libelf-dev', why: 'create-diff-object and libwfpatch read and write ELF with libelf; objtool' },
  { name: 'cpio', why: 'guest initramfs images' },
  { name: 'busybox-static', why: 'the guest userland (shell, mount, ip)' },
  { name: 'qemu-system-x86', why: 'boots the guest kernel under TCG' },
  { name: 'xz-utils', why: 'unpacks linux-source-6.1.tar.xz' },
  { name: 'dpkg-dev', why: 'apt-get source and dpkg-source for Debian packages' },
  { name: 'quilt', why: "applies Debian packages' own patch series" },
  { name: 'devscripts', why: 'Debian source tooling (dpkg-buildpackage helpers)' },
  { name: 'python3', why: 'kernel helper scripts' },
  { name: 'afl++', why: 'bounded fuzzing of the create-diff-object ELF reader' },
  { name: 'g++', why: 'C++ test cases for create-diff-object' },
  { name: 'clang', why: 'create-diff-object robustness test: an aarch64 object (clang --target) must be refused' },
  { name: 'tcl', why: "create-diff-object benchmark: builds SQLite's amalgamation from Debian's sqlite3 source" },
  { name: 'patch', why: 'wfbuild applies source patches (patch -p1, with a dry run first)' },
  { name: 'debhelper', why: 'wfbuild: dh_auto_install finds the binaries a Debian package installs' },
  { name: 'dwarves', why: 'wfbuild: pahole compares struct layouts (DWARF) of original and patched objects' },
  { name: 'linux-config-6.1', why: "Debian's amd64 kernel configuration (wfbuild kernel build --variant debian)" },
  { name: 'rsync', why: 'wfbuild kernel package: make bindeb-pkg (build dependency of the kernel .deb)' },
  { name: 'kmod', why: 'wfbuild kernel package: make bindeb-pkg (build dependency of the kernel .deb)' },
  { name: 'fakeroot', why: 'wfbuild kernel package: make bindeb-pkg' },
  { name: 'lintian', why: 'wfbuild package: the hot-fix .deb is checked with lintian (test/package.test.ts)' },
  { name: 'meson', why: 'wfbuild tests: a meson + ninja Debian tree whose patched build replays the recorded ninja (test/rebuild.test.ts)' },
  { name: 'cmake', why: "wfbuild corpus: configures a CMake package's trees before and after a build-system unit (test/corpus-configure-unit.test.ts; mariadb)" },
  { name: 'ninja-build', why: 'wfbuild: ninja builds (meson, CMake) are recorded and replayed incrementally' },
  { name: 'libmemcached-tools', why: 'wfbuild live: memcaslap (load) and memccapable (protocol conformance) against the live-patched memcached' },
  { name: 'libseccomp-dev', why: "runtime W^X test: wfsandbox installs a systemd unit's seccomp filters (static libseccomp.a)" },
  { name: 'fdisk', why: 'kernel install test: sfdisk partitions the Debian 12 machine\'s disk image (pipeline/src/kernel/machine.ts)' },
  { name: 'debootstrap', why: 'guest tests boot a minimal Debian 12 root made from the registry (pipeline/src/vm/rootfs.ts): dpkg, maintainer scripts, the kernel package install' },
];

/** Debian packages needed to build these source packages (installed with apt-get build-dep). */
export const buildDependencyPackages: readonly string[] = ['memcached'];
