/*
 * create-diff-object: the in-memory ELF model shared by all passes.
 *
 * The tool is a pipeline of named passes over two models (orig, patched):
 *   read -> correlate -> compare -> include -> rewrite -> write
 * plus the verdict (JSON) and the optional target binary check.
 */
#ifndef CDO_H
#define CDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <gelf.h>

/* Exit codes (documented in FORMAT.md). */
enum {
	EXIT_PATCH = 0,
	EXIT_USAGE = 1,
	EXIT_BADINPUT = 2,
	EXIT_NOCHANGE = 3,
	EXIT_NOTTEXT = 4,
	EXIT_UNPATCHABLE = 5,
};

enum status { ST_SAME = 0, ST_CHANGED, ST_NEW };

/* What a section is, for the purpose of diffing. */
enum sec_kind {
	K_OTHER = 0,	/* debug info, notes, symtab, ...: never diffed, never copied */
	K_TEXT,		/* executable code */
	K_STRINGS,	/* SHF_MERGE|SHF_STRINGS literal pools: compared by value */
	K_VALUE,	/* anonymous read-only data owned by code (jump tables,
			 * .rodata.cst*, __func__, CSWTCH, DW.ref.*): compared by
			 * value, copied into the patch when new code uses it */
	K_DATA,		/* named data objects: a change is "not text-only" */
	K_EH,		/* .eh_frame */
	K_LSDA,		/* .gcc_except_table* */
	K_GROUP,	/* SHT_GROUP */
	K_RELA,		/* SHT_RELA */
};

struct symbol;
struct section;

struct rela {
	uint64_t offset;
	uint32_t type;
	int64_t addend;
	struct symbol *sym;
	/* Filled by resolve_rela(): the named symbol the relocation really
	 * points at (section symbols and .LC labels looked through), or NULL
	 * when it points at anonymous data in @tsec at @toff. */
	struct symbol *tsym;
	int64_t toff;		/* offset within tsym (or within tsec) */
	struct section *tsec;
	/* Filled by the rewrite pass for relocations that go to the output:
	 * exactly one of ext (load-time reference), osym (symbol defined in
	 * the patch) or osec (section symbol of a copied section). */
	struct extref *ext;
	struct symbol *osym;
	struct section *osec;
	int64_t oaddend;
};

struct section {
	unsigned idx;
	const char *name;
	GElf_Shdr sh;
	unsigned char *data;	/* NULL for SHT_NOBITS */
	size_t size;
	enum sec_kind kind;
	struct section *rela;	/* the SHT_RELA section applying to this one */
	struct section *base;	/* for a rela section: the section it applies to */
	struct rela *relas;	/* valid on the base section */
	size_t nrelas;
	struct symbol *secsym;	/* the STT_SECTION symbol */
	struct symbol **syms;	/* FUNC/OBJECT symbols defined here */
	size_t nsyms;
	struct section *group;	/* COMDAT group containing it, if any */
	struct section *lsda;	/* K_TEXT: its .gcc_except_table.<name> */

	struct section *twin;
	enum status status;
	bool compared, comparing;
	bool include;
	const char *why_included;
	unsigned out_idx;	/* index in the output, 0 = not written */
	unsigned out_secsym;	/* output symbol index of its section symbol */
	/* K_EH only: rebuilt contents for the output */
	unsigned char *out_data;
	size_t out_size;
	struct rela *out_relas;
	size_t out_nrelas;
};

struct symbol {
	unsigned idx;
	const char *name;
	GElf_Sym st;
	unsigned char type, bind;
	struct section *sec;	/* NULL for UND/ABS/COMMON */
	const char *norm;	/* name with GCC's .N numbering removed */
	const char *user;	/* static locals: normalized name of a function using it */

	struct symbol *twin;
	struct symbol *parent;	/* .cold part -> its function */
	enum status status;
	bool include;
	unsigned out_idx;	/* index in the output symtab */
	unsigned char out_bind;	/* binding in the output */
	unsigned ext_idx;	/* output index of the undefined reference to it */
	bool unresolved;
};

struct object {
	const char *path;
	unsigned char *buf;
	size_t bufsize;
	Elf *elf;
	struct section *secs;
	size_t nsecs;
	struct symbol *syms;
	size_t nsyms;
	struct section *symtab, *strtab;
	const char *file;	/* STT_FILE name ("" if none) */
	char err[512];
};

/* A reference the patch keeps to something in the running program. */
struct extref {
	char *name;		/* output symbol name (plain or __wfsym:...) */
	const char *plain;	/* the symbol's own name */
	bool local;		/* named __wfsym:<sympos>:<plain>:<file> */
	const char *file;	/* the STT_FILE block: the object's, or "" for hidden globals */
	unsigned sympos;	/* 0 = not measured (written as 1) */
	unsigned char type, bind;
	struct symbol *orig;	/* the original symbol, NULL for undefined globals */
	unsigned out_idx;
	bool checked, resolved;
	bool used;		/* written to the output (set by the writer) */
	const char *how;	/* how it resolved / why not */
};

struct record {
	struct symbol *newsym;
	struct symbol *oldsym;	/* in the orig object */
	struct extref *old;
	bool dropped;		/* old function absent from the binary */
};

struct target {
	const char *path;
	char build_id[129];
	unsigned char *buf;
	size_t bufsize;
	Elf *elf;
	/* symbol tables, flattened */
	struct tsym {
		const char *name;
		unsigned char type, bind;
		bool defined;
		uint64_t size, value;
		const char *file;	/* STT_FILE block (locals only) */
		unsigned block;		/* file block number (locals only) */
	} *syms;
	size_t nsyms;
	unsigned chosen_block;	/* the file block that is our object, 0 = none */
	struct { uint64_t addr, size, offset; } *text;	/* executable sections */
	size_t ntext;
	char **libs;		/* DT_NEEDED names */
	size_t nlibs;
	/* --loaded-by: the programs that dlopen() this binary (its exported dynamic symbols and
	 * their DT_NEEDED libraries resolve its undefined references), in search order */
	struct target *loaders;
	size_t nloaders;
	/* --library-dir: where the build's own libraries are (the package installs them where
	 * the run path points), searched before the system's directories */
	const char **libdirs;
	size_t nlibdirs;
};

/* A reason string list for the verdict. */
struct strlist {
	char **v;
	size_t n;
};

/* One structured reason ("kind", symbol or NULL, text) for the verdict. */
struct reason {
	const char *kind;	/* "data", "unpatchable", "error" */
	char *symbol;
	char *what;
};

struct diff {
	struct object *orig, *patched;
	const char *orig_path, *patched_path;
	struct target *target;

	struct extref **exts;
	size_t nexts;
	struct record *recs;
	size_t nrecs;

	bool text_only, patchable;
	bool allow_new_data;	/* --new-data: new variables travel in the patch */
	/* --provided NAME: globals another patch object of the same bundle defines */
	const char **provided;
	size_t nprovided;
	bool data_changed;	/* existing data changed, or new data the patch cannot carry */
	struct strlist text_reasons, patch_reasons, notes;
	/* verdict lists, filled by the include pass */
	struct strlist changed_data_json, new_data_json, copied_data_json;
	struct strlist carried_data_json;	/* new data the patch defines (--new-data) */
	bool compared;		/* the compare pass ran: function lists are meaningful */
	struct reason *reasons;
	size_t nreasons;
	int exit_code;
	char error[600];
};

/* util.c */
void *xzalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void strlist_add(struct strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool strlist_has(const struct strlist *l, const char *s);
struct diff;
void not_text_only(struct diff *d, const char *symbol, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void not_patchable(struct diff *d, const char *symbol, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void new_data_reason(struct diff *d, const char *symbol, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
const char *normalize_name(const char *name);
bool is_pcrel(uint32_t type);
int rela_width(uint32_t type);
bool sym_is_anon_value(const struct symbol *sym);
bool is_ro_local(const struct symbol *sym);
uint64_t old_room(const struct symbol *o);

/* pass 1: read.c */
int read_object(struct object *obj, const char *path);
int read_object_mem(struct object *obj, const char *name, unsigned char *buf, size_t size);
void resolve_rela(struct object *obj, struct rela *r);

/* pass 2: correlate.c */
int correlate(struct diff *d);

/* pass 3: compare.c */
void compare(struct diff *d);
bool rela_equal(struct rela *a, struct rela *b, int depth);
const char *object_diff(struct symbol *a, struct symbol *b, int depth);

/* pass 4: include.c */
void include(struct diff *d);

/* pass 4b: newdata.c (--new-data) */
bool new_data_candidate(struct diff *d, struct symbol *s);
const char *new_data_refusal(const struct symbol *s);
void new_data(struct diff *d);
void data_entry(struct strlist *l, struct symbol *s, const char *reason);

/* pass 5: rewrite.c */
void rewrite(struct diff *d);
const char *extref_name(const struct extref *e);

/* pass 6: write.c and eh_frame.c */
int write_output(struct diff *d, const char *path);
int build_eh_frame(struct object *obj, struct section *eh, char *err, size_t errlen);

/* target.c */
int read_target(struct target *t, const char *path, char *err, size_t errlen);
int read_loader(struct target *t, const char *path, char *err, size_t errlen);
void check_target(struct diff *d);

/* verdict.c */
int write_verdict(struct diff *d, const char *path, const char *output);

#endif
