// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "procs/elfsym.h"
#include "procs/procs.h"
#include "pyread.h"

#define RETRIES 8 /* torn reads of one dict before giving up */
#define MAX_ENTRIES (1 << 24) /* a dict's entries read at most */
#define MAX_STR (1 << 20) /* a str's code points read at most */
#define ATTRS_MAX 4096 /* attributes of an instance looked through */

/* PyInterpreterState -> sys.modules, 3.8-3.15 (names-outside-cpython.md). */
static const uint32_t modules_off[] = {
	[8] = 0x38,   [9] = 0x358,   [10] = 0x358,  [11] = 0x378,
	[12] = 0x3b0, [13] = 0x1de8, [14] = 0x1e08, [15] = 0x1da8
};

static const char *const type_syms[PYT_COUNT] = {
	[PYT_STR] = "PyUnicode_Type",
	[PYT_DICT] = "PyDict_Type",
	[PYT_LIST] = "PyList_Type",
	[PYT_TUPLE] = "PyTuple_Type",
	[PYT_BYTES] = "PyBytes_Type",
	[PYT_BYTEARRAY] = "PyByteArray_Type",
	[PYT_INT] = "PyLong_Type",
	[PYT_FLOAT] = "PyFloat_Type",
	[PYT_MODULE] = "PyModule_Type",
	[PYT_SET] = "PySet_Type",
	[PYT_FROZENSET] = "PyFrozenSet_Type",
	[PYT_TYPE] = "PyType_Type",
};

int pyread__read(const struct pyread *r, uint64_t addr, void *buf, size_t size)
{
	ssize_t got;

	if (!size)
		return 0;
	got = pread(r->fd, buf, size, (off_t)addr);
	return got == (ssize_t)size ? 0 : -EIO;
}

/*
 * The line of the cache that holds addr, read in when absent; NULL when
 * that part of the target cannot be read as a whole line.
 */
static const uint8_t *cache_line(const struct pyread *r, uint64_t addr)
{
	struct pyread_cache *c = r->cache;
	uint64_t base = addr & ~(uint64_t)(PYREAD_LINE - 1);
	size_t slot = (base / PYREAD_LINE) % PYREAD_LINES;

	if (c->tag[slot] == base + 1)
		return c->data + slot * PYREAD_LINE;
	c->tag[slot] = 0;
	if (pyread__read(r, base, c->data + slot * PYREAD_LINE, PYREAD_LINE))
		return NULL;
	c->tag[slot] = base + 1;
	c->reads++;
	return c->data + slot * PYREAD_LINE;
}

int pyread__peek(const struct pyread *r, uint64_t addr, void *buf, size_t size)
{
	uint64_t off = addr & (PYREAD_LINE - 1);
	const uint8_t *line;

	if (!r->cache || off + size > PYREAD_LINE)
		return pyread__read(r, addr, buf, size);
	line = cache_line(r, addr);
	if (!line)
		return pyread__read(r, addr, buf, size);
	memcpy(buf, line + off, size);
	return 0;
}

void pyread__forget(const struct pyread *r)
{
	if (r->cache)
		memset(r->cache->tag, 0, sizeof(r->cache->tag));
}

/* A word of the target; 0 when unreadable (callers treat 0 as none). */
static uint64_t word(const struct pyread *r, uint64_t addr)
{
	uint64_t v = 0;

	if (pyread__read(r, addr, &v, sizeof(v)))
		return 0;
	return v;
}

/* The builtin types' addresses: .dynsym of the file defining _PyRuntime. */
static void find_types(struct pyread *r)
{
	uint64_t vaddr, size;
	int i;

	for (i = 0; i < PYT_COUNT; i++)
		if (type_syms[i] &&
		    !elfsym__object(r->rt.path, type_syms[i], &vaddr, &size))
			r->types[i] = r->rt.bias + vaddr;
}

/*
 * sys.modules' place in the interpreter: 3.13+ say it in their own
 * _Py_DebugOffsets (a patch release may move it); before, the table.
 */
static uint32_t find_modules(const struct pyread *r)
{
	uint64_t v;

	/* interpreter_state.imports_modules: 3.14 added threads_main before */
	if (r->rt.minor >= 13) {
		v = word(r, r->rt.runtime + (r->rt.minor == 13 ? 0x58 : 0x60));
		if (v && v < 0x100000)
			return v;
	}
	return modules_off[r->rt.minor];
}

int pyread__open(struct pyread *r, pid_t pid)
{
	char mem[64];
	int err;

	memset(r, 0, sizeof(*r));
	r->pid = pid;
	r->fd = -1;
	err = pyruntime__detect(pid, &r->rt);
	if (err)
		return err;
	if (r->rt.major != 3 || r->rt.minor < 8 || r->rt.minor > 15)
		return -ENOTSUP;
	snprintf(mem, sizeof(mem), "/proc/%d/mem", (int)pid);
	r->fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return -errno;
	r->cache = calloc(1, sizeof(*r->cache));
	if (!r->cache) {
		pyread__close(r);
		return -ENOMEM;
	}
	find_types(r);
	r->modules = find_modules(r);
	if (r->types[PYT_STR] && r->types[PYT_DICT])
		return 0;
	pyread__close(r);
	return -ENOTSUP;
}

void pyread__close(struct pyread *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->cache);
	r->cache = NULL;
}

enum py_type pyread__type(const struct pyread *r, uint64_t obj)
{
	uint64_t t = obj ? word(r, obj + 8) : 0;
	int i;

	for (i = 1; t && i < PYT_COUNT; i++)
		if (r->types[i] == t)
			return i;
	return PYT_OTHER;
}

/* A dict's shape, read once: what must not change while it is read. */
struct dict_shape {
	uint64_t keys, values, used, nentries;
	uint64_t entries; /* address of the first entry */
	unsigned esize; /* bytes per entry */
	unsigned vskip; /* bytes before values[0] in ma_values */
};

/* 3.8-3.10: dk_size, indices sized by it, {hash, key, value} entries. */
static int shape_310(const struct pyread *r, struct dict_shape *s)
{
	uint64_t size = word(r, s->keys + 0x08), ix;

	if (!size || size > ((uint64_t)1 << 40) || (size & (size - 1)))
		return -EIO;
	ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffff ? 4 : 8;
	s->nentries = word(r, s->keys + 0x20);
	s->entries = s->keys + 0x28 + size * ix;
	s->esize = 24;
	return 0;
}

/* 3.11+: log2 sizes and a kind byte; unicode keys drop the hash. */
static int shape_311(const struct pyread *r, struct dict_shape *s)
{
	uint8_t head[4];

	if (pyread__read(r, s->keys + 0x08, head, sizeof(head)) ||
	    head[0] > 40 || head[1] > 43 || head[2] > 2)
		return -EIO;
	s->nentries = word(r, s->keys + 0x18);
	s->entries = s->keys + 0x20 + ((uint64_t)1 << head[1]);
	s->esize = head[2] == 0 ? 24 : 16;
	if (s->nentries > ((uint64_t)1 << head[0]))
		return -EIO;
	return 0;
}

static int read_shape(const struct pyread *r, uint64_t dict,
		      struct dict_shape *s)
{
	uint64_t hdr[6];

	memset(s, 0, sizeof(*s));
	if (pyread__read(r, dict, hdr, sizeof(hdr)))
		return -EIO;
	s->used = hdr[2], s->keys = hdr[4], s->values = hdr[5];
	s->vskip = r->rt.minor >= 13 ? 8 : 0;
	if (!s->keys)
		return -EIO;
	if ((r->rt.minor <= 10 ? shape_310(r, s) : shape_311(r, s)) ||
	    s->nentries > MAX_ENTRIES || s->used > s->nentries)
		return -EIO;
	return 0;
}

/* Keys (and, combined, values) of the n entries; split values after. */
static int read_entries(const struct pyread *r, const struct dict_shape *s,
			struct py_item *items, int max)
{
	uint8_t *buf = malloc(s->nentries * s->esize + 1);
	uint64_t i, k = s->esize == 24 ? 8 : 0, v;
	int n = 0, err = 0;

	if (!buf)
		return -ENOMEM;
	if (pyread__read(r, s->entries, buf, s->nentries * s->esize))
		err = -EIO;
	for (i = 0; !err && i < s->nentries && n < max; i++) {
		memcpy(&items[n].key, buf + i * s->esize + k, 8);
		if (s->values)
			v = word(r, s->values + s->vskip + 8 * i);
		else
			memcpy(&v, buf + i * s->esize + k + 8, 8);
		items[n].value = v;
		if (items[n].key && v)
			n++;
	}
	free(buf);
	return err ? err : n;
}

static bool same_shape(const struct dict_shape *a, const struct dict_shape *b)
{
	return a->keys == b->keys && a->values == b->values &&
	       a->used == b->used && a->nentries == b->nentries;
}

int pyread__dict_items(const struct pyread *r, uint64_t dict,
		       struct py_item *items, int max)
{
	struct dict_shape a, b;
	int tries, n = -EAGAIN;

	for (tries = 0; tries < RETRIES; tries++) {
		if (read_shape(r, dict, &a))
			continue;
		n = read_entries(r, &a, items, max);
		if (n >= 0 && !read_shape(r, dict, &b) && same_shape(&a, &b) &&
		    (uint64_t)n ==
			    (a.used < (uint64_t)max ? a.used : (uint64_t)max))
			return n;
		n = -EAGAIN;
	}
	return n;
}

/* One code point as UTF-8 into buf[*at..size-1); false when full. */
static bool put_utf8(char *buf, size_t size, size_t *at, uint32_t c)
{
	char u[4];
	size_t n;

	if (c < 0x80)
		u[0] = c, n = 1;
	else if (c < 0x800)
		u[0] = 0xc0 | c >> 6, u[1] = 0x80 | (c & 0x3f), n = 2;
	else if (c < 0x10000)
		u[0] = 0xe0 | c >> 12, u[1] = 0x80 | ((c >> 6) & 0x3f),
		u[2] = 0x80 | (c & 0x3f), n = 3;
	else
		u[0] = 0xf0 | c >> 18, u[1] = 0x80 | ((c >> 12) & 0x3f),
		u[2] = 0x80 | ((c >> 6) & 0x3f), u[3] = 0x80 | (c & 0x3f),
		n = 4;
	if (*at + n >= size)
		return false;
	memcpy(buf + *at, u, n);
	*at += n;
	return true;
}

int pyread__str(const struct pyread *r, uint64_t str, char *buf, size_t size)
{
	uint64_t len = word(r, str + 0x10), data;
	uint32_t state = 0, c = 0;
	unsigned kind;
	size_t at = 0, i, take;
	uint8_t *raw;

	if (!size || pyread__type(r, str) != PYT_STR ||
	    pyread__read(r, str + 0x20, &state, sizeof(state)))
		return -EINVAL;
	kind = (state >> 2) & 7;
	if (!(state & 0x20) || (kind != 1 && kind != 2 && kind != 4) ||
	    len > MAX_STR)
		return -EINVAL; /* legacy (non-compact) or torn */
	data = str + ((state & 0x40) ? r->rt.lay.ascii_data
				     : (r->rt.minor <= 11 ? 0x48 : 0x38));
	take = len < size ? len : size; /* a code point is a byte at least */
	raw = malloc(take * kind + 1);
	if (!raw || pyread__read(r, data, raw, take * kind)) {
		free(raw);
		return -EIO;
	}
	for (i = 0; i < take; i++) {
		c = kind == 1	? raw[i]
		    : kind == 2 ? ((uint16_t *)raw)[i]
				: ((uint32_t *)raw)[i];
		if (!put_utf8(buf, size, &at, c))
			break;
	}
	buf[at] = '\0';
	free(raw);
	return len;
}

/* The value of the str key name in dict (its first 4096 entries), or 0. */
static uint64_t lookup(const struct pyread *r, uint64_t dict, const char *name)
{
	struct py_item items[4096];
	char text[256];
	int n = pyread__dict_items(r, dict, items, 4096), i;

	for (i = 0; i < n; i++)
		if (pyread__str(r, items[i].key, text, sizeof(text)) >= 0 &&
		    strcmp(text, name) == 0)
			return items[i].value;
	return 0;
}

int pyread__main_dict(const struct pyread *r, uint64_t *dict)
{
	uint64_t interp = word(r, r->rt.runtime + r->rt.lay.interp_head);
	uint64_t modules = interp ? word(r, interp + r->modules) : 0, main;

	*dict = 0;
	if (!modules || pyread__type(r, modules) != PYT_DICT)
		return -ENOENT; /* not initialized yet */
	main = lookup(r, modules, "__main__");
	if (!main || pyread__type(r, main) != PYT_MODULE)
		return -ENOENT;
	*dict = word(r, main + 0x10); /* md_dict */
	return *dict && pyread__type(r, *dict) == PYT_DICT ? 0 : -ENOENT;
}

int pyread__type_name(const struct pyread *r, uint64_t obj, char *buf,
		      size_t size)
{
	uint64_t type = obj ? word(r, obj + 8) : 0;
	uint64_t name = type ? word(r, type + 0x18) : 0;
	size_t i;

	if (!name || !size || pyread__read(r, name, buf, 1))
		return -EIO;
	/* tp_name may end near a page's end: read it in small steps. */
	for (i = 0; i + 1 < size; i += 16) {
		size_t n = size - 1 - i < 16 ? size - 1 - i : 16;

		if (pyread__read(r, name + i, buf + i, n))
			n = 0;
		buf[i + n] = '\0';
		if (n < 16 || memchr(buf + i, '\0', n))
			break;
	}
	buf[size - 1] = '\0';
	return 0;
}

/* Items of a tuple: inline after the header (3.14 added a hash cache). */
static int tuple_items(const struct pyread *r, uint64_t t, uint64_t *items,
		       int max)
{
	uint64_t n = word(r, t + 0x10);
	uint64_t at = t + (r->rt.minor >= 14 ? 0x20 : 0x18);

	if (n > MAX_ENTRIES)
		return -EIO;
	if (n > (uint64_t)max)
		n = max;
	return pyread__read(r, at, items, n * 8) ? -EIO : (int)n;
}

/* Items of a list, read twice around: a resize replaces ob_item. */
static int list_items(const struct pyread *r, uint64_t l, uint64_t *items,
		      int max)
{
	uint64_t a[2], b[2], n;
	int tries;

	for (tries = 0; tries < RETRIES; tries++) {
		if (pyread__read(r, l + 0x10, a, sizeof(a)) ||
		    a[0] > MAX_ENTRIES)
			return -EIO;
		n = a[0] < (uint64_t)max ? a[0] : (uint64_t)max;
		if (n && pyread__read(r, a[1], items, n * 8))
			continue;
		if (!pyread__read(r, l + 0x10, b, sizeof(b)) && a[0] == b[0] &&
		    a[1] == b[1])
			return n;
	}
	return -EAGAIN;
}

int pyread__seq_items(const struct pyread *r, uint64_t seq, uint64_t *items,
		      int max)
{
	switch (pyread__type(r, seq)) {
	case PYT_LIST:
		return list_items(r, seq, items, max);
	case PYT_TUPLE:
		return tuple_items(r, seq, items, max);
	default:
		return -EINVAL;
	}
}

#define NPY_OWNDATA 0x4
#define NPY_MAX_DIMS 64
#define BASE_CHAIN 32 /* views of views followed at most */

/* Is obj a numpy.ndarray (or a subclass: memmap, matrix)? */
static bool is_ndarray(const struct pyread *r, uint64_t obj)
{
	uint64_t type = word(r, obj + 8);
	char name[32];
	int depth;

	for (depth = 0; type && depth < 8; depth++) {
		uint64_t tp_name = word(r, type + 0x18);

		if (tp_name && !pyread__read(r, tp_name, name, sizeof(name)) &&
		    strncmp(name, "numpy.ndarray", 14) == 0 &&
		    word(r, type + 0x20) == 96)
			return true;
		type = word(r, type + 0x100); /* tp_base */
	}
	return false;
}

/*
 * An array's nbytes: prod(shape) * elsize. numpy 2 widened elsize to an
 * npy_intp at 0x28 (its dtype types are 120 bytes, numpy 1's 96).
 */
static int array_nbytes(const struct pyread *r, uint64_t a, uint64_t *bytes)
{
	uint64_t hdr[8], dims[NPY_MAX_DIMS], n = 1, descr, elsize = 0;
	int nd, i;

	if (pyread__read(r, a, hdr, sizeof(hdr)))
		return -EIO;
	nd = (int)hdr[3];
	descr = hdr[7];
	if (nd < 0 || nd > NPY_MAX_DIMS || !descr ||
	    (nd && pyread__read(r, hdr[4], dims, nd * 8)))
		return -EIO;
	if (word(r, word(r, descr + 8) + 0x20) >= 120)
		elsize = word(r, descr + 0x28);
	else if (pyread__read(r, descr + 0x20, &elsize, 4) == 0)
		elsize &= 0xffffffff;
	for (i = 0; i < nd; i++) {
		if (dims[i] > ((uint64_t)1 << 48))
			return -EIO;
		n *= dims[i];
	}
	*bytes = n * elsize;
	return elsize && elsize < (1 << 20) ? 0 : -EIO;
}

/* The array owning a's data: a itself (OWNDATA) or one down its bases. */
static int array_buffer(const struct pyread *r, uint64_t a,
			struct py_buffer *out)
{
	int i;

	for (i = 0; i < BASE_CHAIN && a && is_ndarray(r, a); i++) {
		uint64_t flags = word(r, a + 0x40) & 0xffffffff;

		if (flags & NPY_OWNDATA) {
			out->owner = a;
			out->addr = word(r, a + 0x10);
			return array_nbytes(r, a, &out->bytes);
		}
		a = word(r, a + 0x30); /* base */
	}
	return -ENOENT; /* a base that is not an array: bytes, mmap... */
}

int pyread__buffer(const struct pyread *r, uint64_t obj, struct py_buffer *out)
{
	uint64_t size;

	memset(out, 0, sizeof(*out));
	out->owner = obj;
	switch (pyread__type(r, obj)) {
	case PYT_BYTES:
		out->addr = obj;
		out->bytes = 0x21 + word(r, obj + 0x10);
		return 0;
	case PYT_BYTEARRAY:
		if (r->rt.minor >= 15 && (size = word(r, obj + 0x38))) {
			out->addr = out->owner = size; /* ob_bytes_object */
			out->bytes = 0x21 + word(r, size + 0x10);
			return 0;
		}
		out->addr = word(r, obj + 0x20);
		out->bytes = word(r, obj + 0x18); /* ob_alloc */
		return out->addr ? 0 : -ENOENT;
	case PYT_LIST:
		out->addr = word(r, obj + 0x18);
		out->bytes = 8 * word(r, obj + 0x20); /* allocated */
		return out->addr ? 0 : -ENOENT;
	default:
		return array_buffer(r, obj, out);
	}
}

/* The items of a dict's keys object with outside values (3.11+). */
static int keys_items(const struct pyread *r, uint64_t keys, uint64_t values,
		      struct py_item *items, int max)
{
	struct dict_shape s = { .keys = keys, .values = values };

	s.vskip = r->rt.minor >= 13 ? 8 : 0;
	if (shape_311(r, &s) || s.nentries > MAX_ENTRIES)
		return -EIO;
	return read_entries(r, &s, items, max);
}

/* PyHeapTypeObject -> ht_cached_keys, 3.11-3.15 (names-outside-cpython). */
static uint32_t cached_keys_off(int minor)
{
	return minor <= 11 ? 0x368 : minor <= 14 ? 0x370 : 0x378;
}

#define TPF_INLINE_VALUES 0x4
#define TPF_MANAGED_DICT 0x10
#define TPF_HEAPTYPE 0x200

/* 3.11+: a managed dict's values without a dict object, from the type's keys. */
static int managed_values(const struct pyread *r, uint64_t type,
			  uint64_t values, struct py_item *items, int max)
{
	uint64_t keys = word(r, type + cached_keys_off(r->rt.minor));

	return keys ? keys_items(r, keys, values, items, max) : -ENOENT;
}

/*
 * Where an instance keeps its attributes, by version (names-outside-
 * cpython.md, section 3): the values array to pair with the type's keys,
 * or the dict.
 */
static void attrs_place(const struct pyread *r, uint64_t obj, uint64_t type,
			uint64_t *values, uint64_t *dict)
{
	uint64_t flags = word(r, type + 0xa8), w;
	int64_t off;
	uint8_t hdr[4];

	*values = *dict = 0;
	if (r->rt.minor >= 11 && (flags & TPF_MANAGED_DICT)) {
		if (r->rt.minor == 11 && (w = word(r, obj - 32))) {
			*values = w;
			return;
		}
		w = word(r, obj - 24);
		if (r->rt.minor == 12 && (w & 1)) {
			*values = w + 1;
			return;
		}
		if (r->rt.minor >= 13 && (flags & TPF_INLINE_VALUES)) {
			uint64_t v = obj + word(r, type + 0x20);

			if (!pyread__read(r, v, hdr, sizeof(hdr)) && hdr[3] &&
			    !w) {
				*values = v;
				return;
			}
		}
		*dict = w;
		return;
	}
	off = (int64_t)word(r, type + 0x120);
	if (off > 0 && off < 4096)
		*dict = word(r, obj + off);
}

int pyread__attrs(const struct pyread *r, uint64_t obj, struct py_item *items,
		  int max)
{
	uint64_t type = word(r, obj + 8), values, dict;

	if (!type)
		return -EIO;
	attrs_place(r, obj, type, &values, &dict);
	if (values)
		return managed_values(r, type, values, items, max);
	if (dict && pyread__type(r, dict) == PYT_DICT)
		return pyread__dict_items(r, dict, items, max);
	return -ENOENT;
}

uint64_t pyread__attrs_dict(const struct pyread *r, uint64_t obj)
{
	uint64_t type = word(r, obj + 8), values, dict;

	if (!type)
		return 0;
	attrs_place(r, obj, type, &values, &dict);
	return values ? 0 : dict;
}

uint64_t pyread__attr(const struct pyread *r, uint64_t obj, const char *name)
{
	struct py_item *items = malloc(ATTRS_MAX * sizeof(*items));
	int n = items ? pyread__attrs(r, obj, items, ATTRS_MAX) : 0, i;
	uint64_t found = 0;
	char text[128];

	for (i = 0; i < n && !found; i++)
		if (pyread__str(r, items[i].key, text, sizeof(text)) >= 0 &&
		    !strcmp(text, name))
			found = items[i].value;
	free(items);
	return found;
}

uint64_t pyread__dict_get(const struct pyread *r, uint64_t dict,
			  const char *name)
{
	return lookup(r, dict, name);
}

int pyread__set_items(const struct pyread *r, uint64_t set, uint64_t *items,
		      int max)
{
	uint64_t hdr[4], i, n = 0, *table; /* fill, used, mask, table */

	if (pyread__read(r, set + 0x10, hdr, sizeof(hdr)) ||
	    hdr[2] >= MAX_ENTRIES || !hdr[3])
		return -EIO;
	table = malloc((hdr[2] + 1) * 16);
	if (!table)
		return -ENOMEM;
	if (pyread__read(r, hdr[3], table, (hdr[2] + 1) * 16)) {
		free(table);
		return -EIO;
	}
	for (i = 0; i <= hdr[2] && n < (uint64_t)max; i++)
		if (table[2 * i])
			items[n++] = table[2 * i];
	free(table);
	return (int)n;
}

int pyread__long(const struct pyread *r, uint64_t obj, int64_t *v)
{
	uint64_t hdr[4];
	int64_t ndigits, sign = 1;
	uint32_t d[2];

	if (pyread__type(r, obj) != PYT_INT ||
	    pyread__read(r, obj, hdr, sizeof(hdr)))
		return -EINVAL;
	if (r->rt.minor >= 12) {
		ndigits = hdr[2] >> 3;
		sign = 1 - (int64_t)(hdr[2] & 3);
	} else {
		ndigits = (int64_t)hdr[2];
		if (ndigits < 0)
			ndigits = -ndigits, sign = -1;
	}
	if (ndigits > 2)
		return -ERANGE;
	memcpy(d, &hdr[3], sizeof(d));
	*v = sign * (int64_t)(ndigits == 0   ? 0
			      : ndigits == 1 ? d[0]
					     : d[0] | (uint64_t)d[1] << 30);
	return 0;
}

/* A dtype's name as numpy prints it for plain types: its scalar type's. */
static void dtype_name(const struct pyread *r, uint64_t descr, char *buf,
		       size_t size)
{
	char full[64] = "";
	uint64_t scalar = word(r, descr + 0x10), name = word(r, scalar + 0x18);
	const char *dot;

	buf[0] = '\0';
	if (!name || pyread__read(r, name, full, 32))
		return;
	full[32] = '\0';
	dot = strrchr(full, '.');
	snprintf(buf, size, "%s", dot ? dot + 1 : full);
	/* numpy's scalar types end in "_" where a builtin took the name */
	if (strlen(buf) > 1 && buf[strlen(buf) - 1] == '_')
		buf[strlen(buf) - 1] = '\0';
}

int pyread__array(const struct pyread *r, uint64_t obj, struct py_array *a)
{
	uint64_t hdr[9], flags = 0;
	int i;

	memset(a, 0, sizeof(*a));
	if (!is_ndarray(r, obj) || pyread__read(r, obj, hdr, sizeof(hdr)))
		return -EINVAL;
	a->data = hdr[2];
	a->nd = (int)hdr[3];
	a->base = hdr[6];
	a->owndata = (hdr[8] & NPY_OWNDATA) != 0;
	if (a->nd < 0 || a->nd > NPY_MAX_DIMS ||
	    array_nbytes(r, obj, &a->nbytes))
		return -EIO;
	for (i = 0; i < a->nd && i < PY_ARRAY_DIMS; i++)
		a->dims[i] = word(r, hdr[4] + 8 * i);
	/* NPY_ITEM_HASOBJECT: a char at 0x1b (numpy 1), a u64 at 0x20 (2) */
	if (word(r, word(r, hdr[7] + 8) + 0x20) >= 120)
		flags = word(r, hdr[7] + 0x20);
	else
		pyread__read(r, hdr[7] + 0x1b, &flags, 1);
	a->hasobject = (flags & 1) != 0;
	dtype_name(r, hdr[7], a->dtype, sizeof(a->dtype));
	return 0;
}
