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

/* ---- kernel.c: the generation calls (prctl, or the syscalls on kernels without it) ---- */
WF_HIDDEN long wf_gen_create(void);
WF_HIDDEN long wf_gen_migrate(long id);
WF_HIDDEN long wf_gen_pin(uintptr_t addr, size_t len);
WF_HIDDEN long wf_gen_delete(long id);
/* Copies len bytes into generation id's pinned pages at addr (PR_AS_GEN_WRITE); -ENOSYS if the
 * kernel has no such call. */
WF_HIDDEN long wf_gen_write(long id, uintptr_t addr, const void *buf, size_t len);
/* The kernel has PR_AS_GENERATION (and so the write call); false with WF_GEN_SYSCALLS=1. */
WF_HIDDEN bool wf_gen_has_prctl(void);

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
	/* W^X: the code group is assembled in text_stage (in region, never executable) for its
	 * own r-x mapping at text_addr, which the kernel fills (PR_AS_GEN_WRITE, generation 0:
	 * unpinned memory, the same in every generation); without wx the code runs where it was
	 * assembled. */
	bool wx;
	uintptr_t text_addr;
	const unsigned char *text_stage;
	void *text_map;
	size_t text_map_size;
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
/* Maps size bytes with prot within ±2 GiB of t's code (below it first). */
WF_HIDDEN void *wf_map_near(const struct wf_module *t, size_t size, int prot, char *err);
WF_HIDDEN void wf_patch_unload(struct wf_loaded *p);

/* ---- text.c: writing into the running code ---- */
WF_HIDDEN int wf_text_write_jumps(struct wf_loaded *p, char *err);
WF_HIDDEN int wf_text_restore(struct wf_loaded *p, char *err);
WF_HIDDEN void wf_register_eh_frame(struct wf_loaded *p);
/* Before a patch's region is unmapped: the unwinder must not read its .eh_frame any more. */
WF_HIDDEN void wf_deregister_eh_frame(struct wf_loaded *p);
/* Local mode: 0 if the kernel confirms that no thread runs in generation gen (which holds p's
 * jumps), -EBUSY if one does, another -errno if it cannot tell (no write call, no function). */
WF_HIDDEN int wf_text_gen_idle(const struct wf_loaded *p, long gen);
/* W^X (local mode, wf_init): sets wf_settings.wx if the kernel writes code for us. */
WF_HIDDEN void wf_text_wx_init(void);
/* W^X load: maps the patch's code r-x near its target and has the kernel write it there. */
WF_HIDDEN int wf_text_place(struct wf_loaded *p, size_t size, char *err);
WF_HIDDEN int wf_text_fill(struct wf_loaded *p, char *err);
/* W^X apply: the entry jumps written into generation gen, in which no thread runs yet,
 * through the kernel; no user mapping becomes writable and executable. */
WF_HIDDEN int wf_text_write_gen(struct wf_loaded *p, long gen, char *err);

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
/* Queues an apply for the patcher (before wf_control_start, or from the patcher thread). */
WF_HIDDEN void wf_control_enqueue_apply(const char *path, const char *source);

/* ---- quiescence.c: the tracked threads, for inventory.c (called under quiescence.c's lock) ---- */
WF_HIDDEN void wf_threads_each(void (*fn)(void *arg, const char *name, pid_t tid, long gen), void *arg);

/* ---- inventory.c: what `wfbuild status` asks (the `inventory` request) ---- */
WF_HIDDEN void wf_inventory_finished(bool rollback, const char *path);
WF_HIDDEN void wf_inventory_autoload_dir(const char *dir, const char *off);
WF_HIDDEN void wf_inventory_autoload(const char *path, const char *outcome, const char *reason);
WF_HIDDEN void wf_inventory_emit(int fd);

/* ---- autoload.c: the installed fixes applied at wf_init ---- */
WF_HIDDEN void wf_autoload(void);
/* Unless WF_ROLLBACK_DEPTH is set: wf_settings.rollback_depth = max(1, installed fixes). */
WF_HIDDEN void wf_autoload_rollback_depth(void);

/* ---- init.c: configuration ---- */
struct wf_settings {
	bool global;
	bool auto_threads;
	double cyclic;          /* seconds, <= 0 if off */
	double global_timeout;  /* seconds */
	int rollback_depth;
	char *queue;            /* WF_PATCH_QUEUE copy */
	bool generations;       /* local mode: kernel generations available and text pinned */
	bool wx;                /* local mode writes code through the kernel (PR_AS_GEN_WRITE) */
	char generations_error[WF_ERRLEN];
};
extern WF_HIDDEN struct wf_settings wf_settings;
#include "wfpatch.h"
extern WF_HIDDEN struct wf_configuration wf_config;

#endif
