/* libwfpatch internals shared between the runtime's source files. */
#ifndef WF_INTERNAL_H
#define WF_INTERNAL_H

#include <elf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "json.h"

#define WF_HIDDEN __attribute__((visibility("hidden")))
#define WF_ERRLEN 512

/* ---- log.c: the JSON-lines log, events written with json.h ---- */
WF_HIDDEN void wf_log_open(const char *path);
/* Starts an event: a JSON object with time, pid and event; add members with json.h. */
WF_HIDDEN void wf_event_begin(struct wf_json *j, const char *event);
/* Ends the event: one line to the log and, if out >= 0, to `out` as well (a control-socket
 * client); frees the writer. An event the writer could not complete is logged as its name and
 * an error, never as a broken line. */
WF_HIDDEN void wf_event_emit_to(struct wf_json *j, int out);
WF_HIDDEN void wf_event_emit(struct wf_json *j);
WF_HIDDEN uint64_t wf_now_ns(void);
WF_HIDDEN void wf_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
WF_HIDDEN int wf_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- forkprobe.c: the `fork` control request ---- */
WF_HIDDEN void wf_fork_probe(int out);

/* ---- kernel.c: the generation syscalls ---- */
WF_HIDDEN long wf_gen_create(void);
WF_HIDDEN long wf_gen_migrate(long id);
WF_HIDDEN long wf_gen_pin(uintptr_t addr, size_t len);
WF_HIDDEN long wf_gen_delete(long id);

/* ---- modules.c: the loaded modules (executable and shared libraries) ---- */
struct wf_module {
	char path[4096];
	char name[256];        /* dlpi_name, or "" for the executable */
	uintptr_t base;        /* dlpi_addr */
	uintptr_t lo, hi;      /* span of all PT_LOAD segments */
	uintptr_t text_lo, text_hi; /* span of the executable PT_LOAD segments */
	char build_id[129];    /* lowercase hex, "" if none */
	bool is_exe;
	bool pinned;
	/* Symbol tables, read from the file on first use. */
	bool syms_loaded;
	char syms_error[WF_ERRLEN];
	unsigned char *file;   /* the ELF file (or its debug file) in memory */
	size_t file_size;
	const Elf64_Sym *symtab;
	size_t nsymtab;
	const char *symstr;
	size_t symstr_size;
	const Elf64_Sym *dynsym;
	size_t ndynsym;
	const char *dynstr;
	size_t dynstr_size;
	unsigned char *dynfile; /* the file holding .dynsym when .symtab came from a debug file */
	size_t dynfile_size;
};
WF_HIDDEN int wf_modules_scan(void);
WF_HIDDEN size_t wf_module_count(void);
WF_HIDDEN struct wf_module *wf_module_at(size_t i);
WF_HIDDEN struct wf_module *wf_module_by_build_id(const char *hex);
WF_HIDDEN struct wf_module *wf_module_containing(uintptr_t addr);
/* Symbol lookups; return 0 on success and fill addr/size, -1 with err otherwise. */
struct wf_symval {
	uintptr_t addr;
	size_t size;
	int type;              /* STT_* */
};
WF_HIDDEN int wf_module_lookup_global(struct wf_module *m, const char *name, struct wf_symval *out, char *err);
/* Bytes from addr to the next symbol (or the end of the code), for jumps over padding. */
WF_HIDDEN size_t wf_module_room(struct wf_module *m, uintptr_t addr);
WF_HIDDEN int wf_module_lookup_local(struct wf_module *m, const char *name, const char *file,
				     unsigned long sympos, struct wf_symval *out, char *err);

/* ---- loader.c: reading and validating a patch object ---- */
#define WF_FUNC_RECORD 32
struct wf_obj {
	unsigned char *buf;
	size_t size;
	const Elf64_Ehdr *eh;
	const Elf64_Shdr *sh;
	unsigned shnum;
	const char *shstr;
	size_t shstr_size;
	unsigned symtab;       /* section index */
	const Elf64_Sym *syms;
	size_t nsyms;
	const char *strtab;
	size_t strtab_size;
	unsigned funcs;        /* .wfpatch.funcs index, 0 if none */
	unsigned funcs_rela;   /* .rela.wfpatch.funcs index */
	size_t nfuncs;
	char build_id[129];
	char *meta;            /* .wfpatch.meta JSON, or NULL */
	unsigned nrelocs;      /* relocations applied to loaded sections */
};
WF_HIDDEN int wf_obj_read(const char *path, struct wf_obj *obj, char *err);
WF_HIDDEN void wf_obj_free(struct wf_obj *obj);
WF_HIDDEN const char *wf_obj_secname(const struct wf_obj *obj, unsigned idx);
WF_HIDDEN const char *wf_obj_symname(const struct wf_obj *obj, const Elf64_Sym *sym);
WF_HIDDEN bool wf_obj_is_loaded(const struct wf_obj *obj, unsigned idx);
/* Width in bytes of a relocation type we apply, 0 for R_X86_64_NONE, -1 if unsupported. */
WF_HIDDEN int wf_reloc_width(unsigned type);

/* ---- relocate.c: placing, resolving and relocating a patch ---- */
struct wf_func {
	uintptr_t old_addr;
	uintptr_t new_addr;
	size_t old_size;
	size_t new_size;
	char name[128];
	unsigned char saved[16]; /* the bytes a jump replaced (global-mode rollback) */
	size_t jump_len;
};
struct wf_loaded {
	char path[4096];
	struct wf_module *target;
	void *region;
	size_t region_size;
	size_t text_bytes, rodata_bytes, data_bytes;
	unsigned nsections, nrelocs, ngot, nplt;
	struct wf_func *funcs;
	size_t nfuncs;
	void *eh_frames[8];
	unsigned neh_frames;
	unsigned eh_registered;
	char *meta;
};
WF_HIDDEN int wf_patch_load(const char *path, struct wf_loaded *out, char *err);
WF_HIDDEN void wf_patch_unload(struct wf_loaded *p);

/* ---- text.c: writing into the running code ---- */
WF_HIDDEN int wf_text_write_jumps(struct wf_loaded *p, char *err);
WF_HIDDEN int wf_text_restore(struct wf_loaded *p, char *err);
WF_HIDDEN void wf_register_eh_frame(struct wf_loaded *p);

/* ---- quiescence.c: threads and transitions ---- */
enum wf_state { WF_IDLE, WF_LOCAL, WF_GLOBAL };
WF_HIDDEN void wf_threads_init(void);
/* Patcher side: start a transition; returns the number of threads that must take part. */
WF_HIDDEN int wf_local_begin(long gen, uint64_t trigger_ns);
WF_HIDDEN int wf_local_remaining(void);
WF_HIDDEN void wf_local_end(void);
WF_HIDDEN int wf_global_begin(uint64_t trigger_ns);
WF_HIDDEN int wf_global_missing(void);
WF_HIDDEN void wf_global_release(void);
/* Logs each thread's migration/arrival not yet logged; returns the slowest time (ms). */
WF_HIDDEN void wf_threads_log_progress(void);
WF_HIDDEN void wf_threads_stats(double *max_ms, double *sum_ms, int *count, double *max_stall_ms);
WF_HIDDEN void wf_threads_missing_names(char *buf, size_t cap);
WF_HIDDEN int wf_notify_fd(void);
WF_HIDDEN enum wf_state wf_state_get(void);

/* ---- control.c: the patcher thread, triggers and the control socket ---- */
WF_HIDDEN int wf_control_start(void);

/* ---- init.c: configuration ---- */
struct wf_settings {
	bool global;
	bool auto_threads;
	double cyclic;          /* seconds, <= 0 if off */
	double global_timeout;  /* seconds */
	int rollback_depth;
	char *queue;            /* WF_PATCH_QUEUE copy */
	bool generations;       /* local mode: kernel generations available and text pinned */
	char generations_error[WF_ERRLEN];
};
extern WF_HIDDEN struct wf_settings wf_settings;
#include "wfpatch.h"
extern WF_HIDDEN struct wf_configuration wf_config;

#endif
