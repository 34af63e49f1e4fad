/* A small JSON writer: one growable buffer, nesting tracked by the writer (commas and closing
 * brackets are never written by hand), strings escaped as they are appended. A document that
 * could not be completed (out of memory, nesting deeper than WF_JSON_DEPTH, unbalanced ends) is
 * marked failed and wf_json_text() refuses it: the writer never hands out invalid JSON.
 *
 * Every value function takes a key: the member name inside an object, NULL inside an array (or
 * for the top-level value). */
#ifndef WF_JSON_H
#define WF_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WF_JSON_DEPTH 16

struct wf_json {
	char *buf;             /* heap, NUL-terminated while not failed */
	size_t len, cap;
	unsigned depth;
	char close[WF_JSON_DEPTH]; /* '}' or ']' for each open container */
	bool more[WF_JSON_DEPTH + 1]; /* a value was written at this level: the next needs a comma */
	bool failed;
	const char *label;     /* the caller's name for the document (the log's event), for reports */
};

#pragma GCC visibility push(hidden)

void wf_json_init(struct wf_json *j);
void wf_json_free(struct wf_json *j);

void wf_json_object(struct wf_json *j, const char *key);
void wf_json_array(struct wf_json *j, const char *key);
/* Closes the innermost open object or array. */
void wf_json_end(struct wf_json *j);

/* val NULL: null. */
void wf_json_str(struct wf_json *j, const char *key, const char *val);
void wf_json_int(struct wf_json *j, const char *key, long long val);
void wf_json_uint(struct wf_json *j, const char *key, unsigned long long val);
/* Three decimals; NaN and infinities (no JSON number) are null. */
void wf_json_num(struct wf_json *j, const char *key, double val);
/* units / 10^decimals, exactly: wf_json_fixed(j, "time", 1234567, 6) writes 1.234567. */
void wf_json_fixed(struct wf_json *j, const char *key, long long units, unsigned decimals);
void wf_json_bool(struct wf_json *j, const char *key, bool val);
/* An address as a string, "0x1234". */
void wf_json_hex(struct wf_json *j, const char *key, uintptr_t val);
/* Already-serialized JSON from elsewhere (a patch's metadata): checked and copied without its
 * insignificant whitespace (so it stays on one line); null if it is not one valid JSON value. */
void wf_json_raw(struct wf_json *j, const char *key, const char *json);

/* The finished document (every container closed), or NULL if the writer failed. */
const char *wf_json_text(const struct wf_json *j, size_t *len);
/* The finished document as one JSON-lines record ('\n' appended; call once), or NULL. */
const char *wf_json_line(struct wf_json *j, size_t *len);

#pragma GCC visibility pop

#endif
