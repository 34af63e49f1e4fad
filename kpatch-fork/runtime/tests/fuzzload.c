/* Bounded mutation run of the patch loader (test/runtime.test.ts): loads a good patch object
 * with random byte changes in its headers, tables and relocations, N times, and never writes a
 * jump. Every attempt must end in "loaded" or a clean rejection — never a crash (built with
 * AddressSanitizer). Usage: fuzzload PATCH.o ITERATIONS SEED */
#define _GNU_SOURCE
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Regions worth mutating: the ELF header, the section headers and the contents of symbol
 * tables, string tables, relocation sections and .wfpatch.* sections. */
static size_t pick_offset(const unsigned char *buf, size_t size)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
	int r = rand() % 4;
	if (r == 0 || eh->e_shoff >= size || eh->e_shoff % 8)
		return (size_t)rand() % sizeof(*eh);
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(buf + eh->e_shoff);
	unsigned n = eh->e_shnum;
	if (r == 1 || n == 0 || eh->e_shoff + n * sizeof(*sh) > size)
		return eh->e_shoff + (size_t)rand() % (n ? n * sizeof(*sh) : 1);
	for (int tries = 0; tries < 16; tries++) {
		const Elf64_Shdr *s = &sh[rand() % n];
		if ((s->sh_type == SHT_SYMTAB || s->sh_type == SHT_RELA || s->sh_type == SHT_STRTAB ||
		     s->sh_flags == 0) && s->sh_size && s->sh_offset + s->sh_size <= size)
			return s->sh_offset + (size_t)rand() % s->sh_size;
	}
	return (size_t)rand() % size;
}

int fuzz_global = 1;

static __attribute__((noipa, used)) int fuzz_helper(void)
{
	return 41;
}

__attribute__((noipa)) int fuzz_victim(char *buf, int len)
{
	return snprintf(buf, (size_t)len, "%d", fuzz_helper());
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	FILE *f = fopen(argv[1], "rb");
	if (!f)
		return 2;
	static unsigned char good[1 << 20], buf[1 << 20];
	size_t size = fread(good, 1, sizeof(good), f);
	fclose(f);
	int iterations = atoi(argv[2]);
	srand((unsigned)atoi(argv[3]));
	char path[] = "/tmp/wffuzz-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 2;
	int loaded = 0, rejected = 0;
	for (int i = 0; i < iterations; i++) {
		memcpy(buf, good, size);
		size_t len = size;
		int changes = 1 + rand() % 4;
		for (int c = 0; c < changes; c++) {
			size_t off = pick_offset(buf, len);
			if (off >= len)
				continue;
			switch (rand() % 3) {
			case 0: buf[off] ^= (unsigned char)(1 << (rand() % 8)); break;
			case 1: buf[off] = (unsigned char)rand(); break;
			default: buf[off] = 0xff; break;
			}
		}
		if (rand() % 10 == 0)
			len = (size_t)rand() % len;
		if (ftruncate(fd, 0) || pwrite(fd, buf, len, 0) != (ssize_t)len)
			return 2;
		struct wf_loaded p;
		char err[WF_ERRLEN];
		if (wf_patch_load(path, &p, err) == 0) {
			loaded++;
			wf_patch_unload(&p);
		} else {
			rejected++;
			if (!err[0])
				fprintf(stderr, "iteration %d: rejected without a reason\n", i);
		}
	}
	unlink(path);
	printf("{\"iterations\":%d,\"loaded\":%d,\"rejected\":%d}\n", iterations, loaded, rejected);
	return 0;
}
