// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "pylines.h"

#define MAX_TABLE (1 << 20)

int pylines__read_table(pid_t pid, uint64_t code, const struct py_layout *l,
			uint8_t **table, size_t *len)
{
	uint64_t obj = 0, size = 0;
	char path[64];
	int fd, err = 0;

	*table = NULL;
	*len = 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pread(fd, &obj, 8, code + l->co_linetable) != 8 || !obj ||
	    pread(fd, &size, 8, obj + l->bytes_size) != 8 || size > MAX_TABLE)
		err = -EIO;
	else if (size && !(*table = malloc(size)))
		err = -ENOMEM;
	else if (size &&
		 pread(fd, *table, size, obj + l->bytes_data) != (ssize_t)size)
		err = -EIO;
	close(fd);
	if (err) {
		free(*table);
		*table = NULL;
	} else {
		*len = size;
	}
	return err;
}

/* 3.8/3.9 co_lnotab: (byte increment, signed line increment) pairs. */
static int lnotab_line(const uint8_t *t, size_t len, int line, int addrq)
{
	int addr = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > addrq)
			break;
		line += (int8_t)t[i + 1];
	}
	return line;
}

/* 3.10 co_linetable: (range length in bytes, line delta | -128) pairs. */
static int linetable310_line(const uint8_t *t, size_t len, int first, int addrq)
{
	int start = 0, end, line = first;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		end = start + t[i];
		if ((int8_t)t[i + 1] != -128)
			line += (int8_t)t[i + 1];
		if (addrq >= start && addrq < end)
			return (int8_t)t[i + 1] == -128 ? first : line;
		start = end;
	}
	return line;
}

static unsigned read_varint(const uint8_t *t, size_t len, size_t *i)
{
	unsigned v = 0, shift = 0;

	while (*i < len) {
		uint8_t b = t[(*i)++];

		v |= (unsigned)(b & 63) << shift;
		shift += 6;
		if (!(b & 64) || shift > 30)
			break;
	}
	return v;
}

static int read_svarint(const uint8_t *t, size_t len, size_t *i)
{
	unsigned v = read_varint(t, len, i);

	return v & 1 ? -(int)(v >> 1) : (int)(v >> 1);
}

/* 3.11+ location table: entries of (code, length) + a line delta. */
static int loctable_line(const uint8_t *t, size_t len, int first, int lasti)
{
	int addr = 0, line = first, delta, here;
	size_t i = 0;

	while (i < len) {
		uint8_t b = t[i++];
		int code = (b >> 3) & 15, n = (b & 7) + 1;

		delta = 0;
		if (code == 14) {
			delta = read_svarint(t, len, &i);
			read_varint(t, len, &i);
			read_varint(t, len, &i);
			read_varint(t, len, &i);
		} else if (code == 13) {
			delta = read_svarint(t, len, &i);
		} else if (code >= 10 && code <= 12) {
			delta = code - 10;
			i += 2;
		} else if (code < 10) {
			i += 1;
		}
		line += delta;
		here = code == 15 ? first : line;
		if (lasti >= addr && lasti < addr + n)
			return here;
		addr += n;
		while (i < len && !(t[i] & 0x80))
			i++; /* resync on the next entry's start bit */
	}
	return line;
}

int pylines__line(int minor, const uint8_t *table, size_t len, int firstlineno,
		  int lasti)
{
	if (!table || lasti < 0)
		return firstlineno;
	if (minor <= 9)
		return lnotab_line(table, len, firstlineno, lasti);
	if (minor == 10)
		return linetable310_line(table, len, firstlineno, lasti * 2);
	return loctable_line(table, len, firstlineno, lasti);
}
