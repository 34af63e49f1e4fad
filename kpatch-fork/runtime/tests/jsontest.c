/* The runtime's JSON writer (json.c) on its own: nesting and commas, escaping, numbers, foreign
 * JSON checked before it is copied, and misuse reported instead of written. Run by
 * `make test-programs` (the build fails if a check does). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int failures;

static void expect_text(struct wf_json *j, const char *want, int line)
{
	const char *got = wf_json_text(j, NULL);
	if (!got || !want ? got != want : strcmp(got, want) != 0) {
		fprintf(stderr, "jsontest.c:%d: got %s\n    want %s\n", line, got ? got : "(failed)", want ? want : "(failed)");
		failures++;
	}
	wf_json_free(j);
}
#define EXPECT(j, want) expect_text(j, want, __LINE__)

static void raw(const char *in, const char *want, int line)
{
	struct wf_json j;
	wf_json_init(&j);
	wf_json_object(&j, NULL);
	wf_json_raw(&j, "v", in);
	wf_json_end(&j);
	char buf[512];
	snprintf(buf, sizeof(buf), "{\"v\":%s}", want);
	expect_text(&j, buf, line);
}
#define RAW(in, want) raw(in, want, __LINE__)

int main(void)
{
	struct wf_json j;

	wf_json_init(&j);
	wf_json_object(&j, NULL);
	wf_json_str(&j, "a", "x");
	wf_json_int(&j, "b", -3);
	wf_json_uint(&j, "c", 18446744073709551615ull);
	wf_json_bool(&j, "d", false);
	wf_json_str(&j, "e", NULL);
	wf_json_array(&j, "f");
	wf_json_end(&j);
	wf_json_array(&j, "g");
	wf_json_object(&j, NULL);
	wf_json_hex(&j, "h", 0x401000);
	wf_json_end(&j);
	wf_json_int(&j, NULL, 2);
	wf_json_array(&j, NULL);
	wf_json_bool(&j, NULL, true);
	wf_json_end(&j);
	wf_json_end(&j);
	wf_json_object(&j, "i");
	wf_json_end(&j);
	wf_json_end(&j);
	EXPECT(&j, "{\"a\":\"x\",\"b\":-3,\"c\":18446744073709551615,\"d\":false,\"e\":null,\"f\":[],"
		   "\"g\":[{\"h\":\"0x401000\"},2,[true]],\"i\":{}}");

	/* Numbers: three decimals; no NaN or infinity in JSON; fixed point exactly. */
	wf_json_init(&j);
	wf_json_array(&j, NULL);
	wf_json_num(&j, NULL, 1.5);
	wf_json_num(&j, NULL, -0.0004);
	wf_json_num(&j, NULL, 0.0 / 0.0);
	wf_json_num(&j, NULL, 1e308 * 10);
	wf_json_num(&j, NULL, 1e300);
	wf_json_fixed(&j, NULL, 1790000000123456ll, 6);
	wf_json_fixed(&j, NULL, -5, 3);
	wf_json_fixed(&j, NULL, 42, 0);
	wf_json_end(&j);
	char big[400];
	snprintf(big, sizeof(big), "[1.500,-0.000,null,null,%.3f,1790000000.123456,-0.005,42]", 1e300);
	EXPECT(&j, big);

	/* Strings: quotes, backslashes, control characters, UTF-8 kept, other bytes replaced. */
	wf_json_init(&j);
	wf_json_object(&j, NULL);
	wf_json_str(&j, "k\"ey", "a\"b\\c\nd\x01\x7f" "\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80" "\xff\xc3(\xed\xa0\x80\xe0\x80\x80\xc3");
	wf_json_end(&j);
	EXPECT(&j, "{\"k\\\"ey\":\"a\\\"b\\\\c\\u000ad\\u0001\\u007f\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80"
		   "\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"}");

	/* Long strings are not cut. */
	size_t n = 100000;
	char *longstr = malloc(n + 1);
	memset(longstr, 'x', n);
	longstr[n] = 0;
	wf_json_init(&j);
	wf_json_str(&j, NULL, longstr);
	const char *t = wf_json_text(&j, NULL);
	if (!t || strlen(t) != n + 2) {
		fprintf(stderr, "jsontest.c:%d: a %zu-byte string was not written whole\n", __LINE__, n);
		failures++;
	}
	wf_json_free(&j);
	free(longstr);

	/* Foreign JSON: valid values copied without whitespace; anything else is null. */
	RAW("{\"patch\": \"a b\", \"cves\": [\"CVE-1\", 2, -0.5e+3, true, null],\n \"t\":{}}",
	    "{\"patch\":\"a b\",\"cves\":[\"CVE-1\",2,-0.5e+3,true,null],\"t\":{}}");
	RAW("\"\\u00e4\\\" \\\\\"", "\"\\u00e4\\\" \\\\\"");
	RAW(" [ ] ", "[]");
	RAW(NULL, "null");
	RAW("", "null");
	RAW("{", "null");
	RAW("{\"a\":1,}", "null");
	RAW("[1 2]", "null");
	RAW("{\"a\" 1}", "null");
	RAW("{a:1}", "null");
	RAW("01", "null");
	RAW("1.", "null");
	RAW("-", "null");
	RAW("\"\\x\"", "null");
	RAW("\"\\u12g4\"", "null");
	RAW("\"tab\there\"", "null");
	RAW("\"\xff\"", "null");
	RAW("{} {}", "null");
	RAW("tru", "null");
	char deep[300];
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	deep[200] = 0;
	RAW(deep, "null");

	/* Misuse is a failed document, never half-written JSON. */
	wf_json_init(&j);
	wf_json_object(&j, NULL);
	wf_json_int(&j, NULL, 1); /* a value without a key in an object */
	wf_json_end(&j);
	EXPECT(&j, NULL);
	wf_json_init(&j);
	wf_json_array(&j, NULL);
	wf_json_int(&j, "k", 1); /* a key in an array */
	wf_json_end(&j);
	EXPECT(&j, NULL);
	wf_json_init(&j);
	wf_json_object(&j, NULL); /* never closed */
	EXPECT(&j, NULL);
	wf_json_init(&j);
	wf_json_end(&j); /* nothing open */
	EXPECT(&j, NULL);
	wf_json_init(&j);
	wf_json_int(&j, NULL, 1);
	wf_json_int(&j, NULL, 2); /* a second document */
	EXPECT(&j, NULL);
	wf_json_init(&j);
	for (int k = 0; k <= WF_JSON_DEPTH; k++)
		wf_json_array(&j, NULL);
	for (int k = 0; k <= WF_JSON_DEPTH; k++)
		wf_json_end(&j);
	EXPECT(&j, NULL);
	wf_json_init(&j);
	EXPECT(&j, NULL); /* empty */

	/* A JSON-lines record: the document and a newline; nothing can follow it. */
	wf_json_init(&j);
	wf_json_object(&j, NULL);
	wf_json_end(&j);
	size_t len = 0;
	t = wf_json_line(&j, &len);
	if (!t || len != 3 || strcmp(t, "{}\n")) {
		fprintf(stderr, "jsontest.c:%d: line %s\n", __LINE__, t ? t : "(failed)");
		failures++;
	}
	wf_json_int(&j, NULL, 1);
	EXPECT(&j, NULL);

	if (failures)
		fprintf(stderr, "jsontest: %d check(s) failed\n", failures);
	else
		printf("jsontest: ok\n");
	return failures != 0;
}
