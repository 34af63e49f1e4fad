/* The JSON writer (json.h). */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void wf_json_init(struct wf_json *j)
{
	memset(j, 0, sizeof(*j));
}

void wf_json_free(struct wf_json *j)
{
	free(j->buf);
	j->buf = NULL;
	j->len = j->cap = 0;
}

/* Room for n more bytes and the terminating NUL. */
static bool reserve(struct wf_json *j, size_t n)
{
	if (j->failed)
		return false;
	if (n < j->cap && j->len < j->cap - n)
		return true;
	size_t cap = j->cap ? j->cap : 256;
	while (cap - j->len <= n) {
		if (cap > ((size_t)-1) / 2) {
			j->failed = true;
			return false;
		}
		cap *= 2;
	}
	char *buf = realloc(j->buf, cap);
	if (!buf) {
		j->failed = true;
		return false;
	}
	j->buf = buf;
	j->cap = cap;
	return true;
}

static void put(struct wf_json *j, const char *s, size_t n)
{
	if (!reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = 0;
}

static void putc_(struct wf_json *j, char c)
{
	put(j, &c, 1);
}

static void putf(struct wf_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct wf_json *j, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		j->failed = true;
		return;
	}
	if (!reserve(j, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(j->buf + j->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	j->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		if (c == 0xed)
			hi = 0x9f; /* UTF-16 surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		if (c == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xbf)
			return 0;
	return n;
}

/* A JSON string: quotes, backslashes and control characters escaped; bytes that are not UTF-8
 * become U+FFFD (a JSON text is UTF-8). */
static void put_string(struct wf_json *j, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	putc_(j, '"');
	while (*s && !j->failed) {
		const unsigned char *run = s;
		size_t n;
		while (*s >= 0x20 && *s != '"' && *s != '\\' && *s != 0x7f && (n = utf8_len(s)) > 0)
			s += n;
		put(j, (const char *)run, (size_t)(s - run));
		if (!*s)
			break;
		if (*s == '"' || *s == '\\') {
			char esc[2] = { '\\', (char)*s };
			put(j, esc, 2);
		} else if (*s < 0x20 || *s == 0x7f) {
			putf(j, "\\u%04x", *s);
		} else {
			put(j, "\\ufffd", 6);
		}
		s++;
	}
	putc_(j, '"');
}

/* Starts a value: the comma before it and, inside an object, its key. */
static bool member(struct wf_json *j, const char *key)
{
	if (j->failed)
		return false;
	bool in_object = j->depth > 0 && j->close[j->depth - 1] == '}';
	if ((key != NULL) != in_object || (j->depth == 0 && j->more[0])) {
		j->failed = true; /* a key in an array, none in an object, or a second document */
		return false;
	}
	if (j->more[j->depth])
		putc_(j, ',');
	j->more[j->depth] = true;
	if (key) {
		put_string(j, key);
		putc_(j, ':');
	}
	return !j->failed;
}

static void open_container(struct wf_json *j, const char *key, char open, char close)
{
	if (!member(j, key))
		return;
	if (j->depth == WF_JSON_DEPTH) {
		j->failed = true;
		return;
	}
	putc_(j, open);
	j->close[j->depth++] = close;
	j->more[j->depth] = false;
}

void wf_json_object(struct wf_json *j, const char *key)
{
	open_container(j, key, '{', '}');
}

void wf_json_array(struct wf_json *j, const char *key)
{
	open_container(j, key, '[', ']');
}

void wf_json_end(struct wf_json *j)
{
	if (j->failed)
		return;
	if (j->depth == 0) {
		j->failed = true;
		return;
	}
	putc_(j, j->close[--j->depth]);
}

void wf_json_str(struct wf_json *j, const char *key, const char *val)
{
	if (!member(j, key))
		return;
	if (val)
		put_string(j, val);
	else
		put(j, "null", 4);
}

void wf_json_int(struct wf_json *j, const char *key, long long val)
{
	if (member(j, key))
		putf(j, "%lld", val);
}

void wf_json_uint(struct wf_json *j, const char *key, unsigned long long val)
{
	if (member(j, key))
		putf(j, "%llu", val);
}

void wf_json_num(struct wf_json *j, const char *key, double val)
{
	if (!member(j, key))
		return;
	if (isfinite(val))
		putf(j, "%.3f", val);
	else
		put(j, "null", 4);
}

void wf_json_fixed(struct wf_json *j, const char *key, long long units, unsigned decimals)
{
	if (!member(j, key))
		return;
	if (decimals > 18) {
		j->failed = true;
		return;
	}
	unsigned long long scale = 1;
	for (unsigned k = 0; k < decimals; k++)
		scale *= 10;
	unsigned long long u = units < 0 ? -(unsigned long long)units : (unsigned long long)units;
	if (decimals)
		putf(j, "%s%llu.%0*llu", units < 0 ? "-" : "", u / scale, (int)decimals, u % scale);
	else
		putf(j, "%s%llu", units < 0 ? "-" : "", u);
}

void wf_json_bool(struct wf_json *j, const char *key, bool val)
{
	if (!member(j, key))
		return;
	if (val)
		put(j, "true", 4);
	else
		put(j, "false", 5);
}

void wf_json_hex(struct wf_json *j, const char *key, uintptr_t val)
{
	if (member(j, key))
		putf(j, "\"0x%lx\"", (unsigned long)val);
}

/* ---- checking foreign JSON: each returns the end of what it accepted, NULL if invalid ---- */

#define RAW_DEPTH 64

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	return s;
}

static const char *check_value(const char *s, int depth);

static const char *check_string(const char *s)
{
	s++; /* the opening quote */
	for (;;) {
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s + 1;
		if (c < 0x20) /* also the end of the text */
			return NULL;
		if (c == '\\') {
			s++;
			if (*s == 'u') {
				for (int k = 1; k <= 4; k++) {
					char h = s[k];
					if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
						return NULL;
				}
				s += 5;
			} else if (*s && strchr("\"\\/bfnrt", *s)) {
				s++;
			} else {
				return NULL;
			}
			continue;
		}
		size_t n = utf8_len((const unsigned char *)s);
		if (!n)
			return NULL;
		s += n;
	}
}

static const char *digits(const char *s)
{
	if (*s < '0' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

static const char *check_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (!(s = digits(s)))
		return NULL;
	if (*s == '.' && !(s = digits(s + 1)))
		return NULL;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(s = digits(s)))
			return NULL;
	}
	return s;
}

/* A '{' or '[' container: members (key: value for objects) separated by commas. */
static const char *check_container(const char *s, int depth)
{
	char close = *s == '{' ? '}' : ']';
	s = skip_ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		if (close == '}') {
			if (*s != '"' || !(s = check_string(s)))
				return NULL;
			s = skip_ws(s);
			if (*s++ != ':')
				return NULL;
		}
		if (!(s = check_value(s, depth + 1)))
			return NULL;
		if (*s == close)
			return s + 1;
		if (*s++ != ',')
			return NULL;
		s = skip_ws(s);
	}
}

/* A value with the whitespace around it. */
static const char *check_value(const char *s, int depth)
{
	if (depth > RAW_DEPTH)
		return NULL;
	s = skip_ws(s);
	if (*s == '{' || *s == '[')
		s = check_container(s, depth);
	else if (*s == '"')
		s = check_string(s);
	else if (*s == '-' || (*s >= '0' && *s <= '9'))
		s = check_number(s);
	else if (!strncmp(s, "true", 4))
		s += 4;
	else if (!strncmp(s, "false", 5))
		s += 5;
	else if (!strncmp(s, "null", 4))
		s += 4;
	else
		return NULL;
	return s ? skip_ws(s) : NULL;
}

void wf_json_raw(struct wf_json *j, const char *key, const char *json)
{
	if (!member(j, key))
		return;
	const char *end = json ? check_value(json, 0) : NULL;
	if (!end || *end) {
		put(j, "null", 4);
		return;
	}
	/* Valid: copy it without the whitespace between tokens. */
	bool in_string = false;
	for (const char *s = json; *s; s++) {
		if (in_string) {
			if (*s == '\\') {
				put(j, s, 2); /* an escape is two bytes (\uXXXX: the rest follows) */
				s++;
				continue;
			}
			if (*s == '"')
				in_string = false;
		} else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
			continue;
		} else if (*s == '"') {
			in_string = true;
		}
		putc_(j, *s);
	}
}

const char *wf_json_text(const struct wf_json *j, size_t *len)
{
	if (j->failed || j->depth != 0 || !j->more[0] || !j->buf)
		return NULL;
	if (len)
		*len = j->len;
	return j->buf;
}

const char *wf_json_line(struct wf_json *j, size_t *len)
{
	if (!wf_json_text(j, NULL))
		return NULL;
	/* Not a value: after the complete document, member() refuses anything more. */
	putc_(j, '\n');
	return wf_json_text(j, len);
}
