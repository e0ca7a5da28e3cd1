// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "shmring.h"

#define ALIGN8(n) (((n) + 7u) & ~7u)

static bool valid_size(uint64_t size)
{
	return size >= SHMRING_MIN && size <= SHMRING_MAX &&
	       !(size & (size - 1));
}

/*
 * Header and data at one address, the data mapped again right after
 * itself: a record that runs past the end reads on without a wrap.
 */
static int map_doubled(struct shmring *r, int fd, uint64_t size)
{
	size_t span = SHMRING_HDR + 2 * size;
	unsigned char *base =
		mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (base == MAP_FAILED)
		return -errno;
	if (mmap(base, SHMRING_HDR + size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
	    mmap(base + SHMRING_HDR + size, size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, SHMRING_HDR) == MAP_FAILED) {
		int err = -errno;

		munmap(base, span);
		return err;
	}
	r->hdr = (struct shmring_hdr *)base;
	r->data = base + SHMRING_HDR;
	r->size = size;
	r->mask = size - 1;
	r->fd = fd;
	return 0;
}

int shmring__create(struct shmring *r, uint64_t size)
{
	int fd, err;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (!valid_size(size))
		return -EINVAL;
	fd = memfd_create("memprof-ring", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, SHMRING_HDR + size)) {
		err = -errno;
		close(fd);
		return err;
	}
	err = map_doubled(r, fd, size);
	if (err) {
		close(fd);
		return err;
	}
	r->hdr->magic = SHMRING_MAGIC;
	r->hdr->version = SHMRING_VERSION;
	r->hdr->size = size;
	return 0;
}

int shmring__map(struct shmring *r, int fd)
{
	struct shmring_hdr h;
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (fstat(fd, &st) || pread(fd, &h, sizeof(h), 0) != sizeof(h))
		return -EIO;
	if (h.magic != SHMRING_MAGIC || h.version != SHMRING_VERSION ||
	    !valid_size(h.size) || (uint64_t)st.st_size != SHMRING_HDR + h.size)
		return -EPROTO;
	return map_doubled(r, fd, h.size);
}

void shmring__close(struct shmring *r)
{
	if (r->hdr)
		munmap(r->hdr, SHMRING_HDR + 2 * r->size);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void *shmring__reserve(struct shmring *r, uint32_t len)
{
	struct shmring_hdr *h = r->hdr;
	uint64_t need = ALIGN8((uint64_t)len + sizeof(struct shmring_rec));
	uint64_t at = __atomic_load_n(&h->reserved, __ATOMIC_RELAXED);
	struct shmring_rec *rec;

	do {
		uint64_t taken = __atomic_load_n(&h->taken, __ATOMIC_ACQUIRE);

		if (at + need - taken > r->size) {
			__atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&h->dropped_bytes, need,
					   __ATOMIC_RELAXED);
			return NULL;
		}
	} while (!__atomic_compare_exchange_n(&h->reserved, &at, at + need,
					      true, __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	rec = (struct shmring_rec *)(r->data + (at & r->mask));
	rec->unused = (uint32_t)need; /* the length, until committed */
	return rec->data;
}

void shmring__commit(struct shmring *r, void *data)
{
	struct shmring_rec *rec =
		(struct shmring_rec *)((unsigned char *)data -
				       sizeof(struct shmring_rec));

	(void)r;
	__atomic_store_n(&rec->len, rec->unused, __ATOMIC_RELEASE);
}

bool shmring__skip_head(struct shmring *r)
{
	struct shmring_hdr *h = r->hdr;
	uint64_t at = __atomic_load_n(&h->taken, __ATOMIC_RELAXED);
	uint64_t end = __atomic_load_n(&h->reserved, __ATOMIC_ACQUIRE);
	struct shmring_rec *rec =
		(struct shmring_rec *)(r->data + (at & r->mask));
	uint32_t len = rec->unused; /* set at reservation */

	if (end <= at || __atomic_load_n(&rec->len, __ATOMIC_ACQUIRE) || !len ||
	    len > r->size || (len & 7) || len > end - at)
		return false;
	memset(rec, 0, len);
	__atomic_fetch_add(&h->dropped, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->dropped_bytes, len, __ATOMIC_RELAXED);
	__atomic_store_n(&h->taken, at + len, __ATOMIC_RELEASE);
	return true;
}

size_t shmring__consume(struct shmring *r, shmring_fn *fn, void *ctx)
{
	return shmring__consume_to(r, UINT64_MAX, fn, ctx);
}

size_t shmring__consume_to(struct shmring *r, uint64_t end, shmring_fn *fn,
			   void *ctx)
{
	struct shmring_hdr *h = r->hdr;
	uint64_t at = __atomic_load_n(&h->taken, __ATOMIC_RELAXED);
	size_t n = 0;

	while (at < end) {
		struct shmring_rec *rec =
			(struct shmring_rec *)(r->data + (at & r->mask));
		uint32_t len = __atomic_load_n(&rec->len, __ATOMIC_ACQUIRE);

		if (!len || len > r->size || (len & 7))
			break; /* not committed yet */
		if (!fn(rec->data, len - (uint32_t)sizeof(*rec), ctx))
			break;
		/* zeroed: a slot reserved there later reads as uncommitted */
		memset(rec, 0, len);
		at += len;
		__atomic_store_n(&h->taken, at, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}

uint64_t shmring__image(void)
{
	const uint64_t *random = (const uint64_t *)getauxval(AT_RANDOM);

	return random ? *random : 0;
}
