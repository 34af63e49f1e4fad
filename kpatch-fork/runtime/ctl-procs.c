/* wfpatch-ctl pids BUILD_ID: the processes a hot-fix is for — those that run libwfpatch (their
 * control socket @wfpatch.<pid> is listed in /proc/net/unix) and map a file whose GNU build-id
 * is BUILD_ID (the executable or a library). The mapped file is read through
 * /proc/PID/map_files, so a binary that an upgrade replaced on disk is still the one checked. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

/* The build-id note of an ELF file as lowercase hex, or "" (not ELF, no note). */
static void file_build_id(int fd, char *hex, size_t cap)
{
	hex[0] = 0;
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256)
		return;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) != (ssize_t)sizeof(ph))
			return;
		if (ph.p_type != PT_NOTE || ph.p_filesz > 65536)
			continue;
		unsigned char note[65536];
		if (pread(fd, note, ph.p_filesz, (off_t)ph.p_offset) != (ssize_t)ph.p_filesz)
			return;
		for (size_t off = 0; off + sizeof(Elf64_Nhdr) <= ph.p_filesz;) {
			Elf64_Nhdr *n = (Elf64_Nhdr *)(note + off);
			size_t name = off + sizeof(*n), desc = name + ((n->n_namesz + 3) & ~3u);
			size_t next = desc + ((n->n_descsz + 3) & ~3u);
			if (next > ph.p_filesz)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(note + name, "GNU", 4) &&
			    n->n_descsz * 2 + 1 <= cap) {
				for (size_t k = 0; k < n->n_descsz; k++)
					sprintf(hex + 2 * k, "%02x", note[desc + k]);
				return;
			}
			off = next;
		}
	}
}

/* Does process pid map a file with this build-id? */
static bool maps_build_id(long pid, const char *want)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[8192], seen[64][64];
	int nseen = 0;
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char range[64];
		unsigned long long off;
		if (sscanf(line, "%63s %*s %llx", range, &off) != 2 || off != 0 || !strchr(line, '/'))
			continue;
		/* One check per file: its first mapping (offset 0) holds the ELF header. */
		bool dup = false;
		for (int i = 0; i < nseen; i++)
			dup |= !strcmp(seen[i], range);
		if (dup)
			continue;
		if (nseen < 64)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", range);
		char mf[128];
		snprintf(mf, sizeof(mf), "/proc/%ld/map_files/%s", pid, range);
		int fd = open(mf, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			char *p = strchr(line, '/');
			p[strcspn(p, "\n")] = 0;
			fd = open(p, O_RDONLY | O_CLOEXEC);
		}
		if (fd < 0)
			continue;
		char hex[129];
		file_build_id(fd, hex, sizeof(hex));
		close(fd);
		found = !strcmp(hex, want);
	}
	fclose(f);
	return found;
}

/* Does /proc/net/unix list @wfpatch.<pid>? */
static bool has_socket(long pid)
{
	FILE *f = fopen("/proc/net/unix", "r");
	if (!f)
		return false;
	char line[1024], want[64];
	snprintf(want, sizeof(want), "@wfpatch.%ld", pid);
	size_t wl = strlen(want);
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, want);
		/* The padded twin ends in NULs, shown as '@'s; the exact name ends the line. */
		found = p && (p[wl] == '\n' || p[wl] == '@' || p[wl] == 0);
	}
	fclose(f);
	return found;
}

int wf_ctl_pids(const char *build_id)
{
	for (const char *c = build_id; *c; c++) {
		if (!isxdigit((unsigned char)*c) || isupper((unsigned char)*c)) {
			fprintf(stderr, "wfpatch-ctl: '%s' is not a build-id (lowercase hex)\n", build_id);
			return 2;
		}
	}
	DIR *d = opendir("/proc");
	if (!d) {
		perror("wfpatch-ctl: /proc");
		return 2;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == getpid())
			continue;
		if (has_socket(pid) && maps_build_id(pid, build_id))
			printf("%ld\n", pid);
	}
	closedir(d);
	return 0;
}
