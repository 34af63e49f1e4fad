/*
 * .eh_frame for the patch: keep the FDEs whose code is in the patch and the
 * CIEs they use, so unwinding (and C++ exceptions) work through new code.
 *
 * The output has no zero terminator: ld -r concatenates .eh_frame sections
 * of several patch objects, and a terminator would hide the later ones.
 * The runtime registers the section after appending its own terminator
 * (see FORMAT.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cdo.h"

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static struct section *pc_target(struct section *eh, uint64_t at)
{
	for (size_t i = 0; i < eh->nrelas; i++) {
		struct rela *r = &eh->relas[i];

		if (r->offset == at)
			return r->sym->sec;
		if (r->offset > at)
			break;
	}
	return NULL;
}

int build_eh_frame(struct object *obj, struct section *eh, char *err, size_t errlen)
{
	size_t n = 0, cap = 16;
	struct rec { uint64_t off, len, cie; bool is_cie, keep; uint64_t newoff; } *v;
	unsigned char *out;
	size_t outlen = 0, nr = 0;

	(void)obj;
	if (!eh->data || !eh->size)
		return 0;
	v = xzalloc(cap * sizeof(*v));
	for (uint64_t off = 0; off < eh->size;) {
		uint32_t len, id;

		if (eh->size - off < 4)
			goto bad;
		len = rd32(eh->data + off);
		if (len == 0)
			break;	/* terminator */
		if (len == 0xffffffff) {
			snprintf(err, errlen, ".eh_frame uses 64-bit record lengths (not supported)");
			free(v);
			return -1;
		}
		if (len < 4 || eh->size - off - 4 < len)
			goto bad;
		id = rd32(eh->data + off + 4);
		if (n == cap)
			v = xrealloc(v, (cap *= 2) * sizeof(*v));
		memset(&v[n], 0, sizeof(v[n]));
		v[n].off = off;
		v[n].len = 4 + (uint64_t)len;
		v[n].is_cie = id == 0;
		if (!v[n].is_cie) {
			struct section *t;
			bool found = false;

			if (id > off + 4)
				goto bad;
			v[n].cie = off + 4 - id;
			for (size_t k = 0; k < n; k++)
				if (v[k].is_cie && v[k].off == v[n].cie)
					found = true;
			if (!found)
				goto bad;
			t = pc_target(eh, off + 8);
			v[n].keep = t && t->include;
		}
		n++;
		off += 4 + (uint64_t)len;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].keep)
			for (size_t k = 0; k < n; k++)
				if (v[k].is_cie && v[k].off == v[i].cie)
					v[k].keep = true;
	out = xzalloc(eh->size + 1);
	for (size_t i = 0; i < n; i++) {
		if (!v[i].keep)
			continue;
		v[i].newoff = outlen;
		memcpy(out + outlen, eh->data + v[i].off, v[i].len);
		if (!v[i].is_cie) {
			uint64_t cienew = 0;
			uint32_t ptr;

			for (size_t k = 0; k < n; k++)
				if (v[k].off == v[i].cie)
					cienew = v[k].newoff;
			ptr = (uint32_t)(outlen + 4 - cienew);
			memcpy(out + outlen + 4, &ptr, 4);
		}
		outlen += v[i].len;
	}
	eh->out_relas = xzalloc((eh->nrelas + 1) * sizeof(struct rela));
	for (size_t j = 0; j < eh->nrelas; j++) {
		struct rela *r = &eh->relas[j];

		for (size_t i = 0; i < n; i++) {
			if (v[i].keep && r->offset >= v[i].off && r->offset < v[i].off + v[i].len) {
				eh->out_relas[nr] = *r;
				eh->out_relas[nr].offset = r->offset - v[i].off + v[i].newoff;
				nr++;
				break;
			}
		}
	}
	eh->out_data = out;
	eh->out_size = outlen;
	eh->out_nrelas = nr;
	free(v);
	return 0;
bad:
	snprintf(err, errlen, ".eh_frame is malformed");
	free(v);
	return -1;
}
