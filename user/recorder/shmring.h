/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A ring of records in shared memory: many writers (the threads of a
 * traced process, through the in-process recorder of issue 17), one
 * reader (the agent). Groundwork for that recorder: its design and
 * measurements are in docs/design/recorder.md.
 *
 * The ring is a memfd: a header page, then the data, mapped twice back
 * to back so that a record that runs past the end is contiguous. A
 * writer reserves its bytes with a compare-and-swap on the reserved
 * count, writes the record, and commits it by storing its length with
 * release order; a full ring drops the record and counts it, and never
 * waits. The reader takes committed records in the order they were
 * reserved (the order that keeps a free before the malloc that reuses
 * its block), stops at the first one not yet committed, and zeroes what
 * it took, so that a reserved slot reads as not committed until its
 * writer commits it.
 */
#ifndef MEMPROF_SHMRING_H
#define MEMPROF_SHMRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "memprof.h"

#define SHMRING_MAGIC 0x676e69726d656d6dull /* "mmemring" */
#define SHMRING_VERSION 2
#define SHMRING_HDR 4096 /* the header page */
#define SHMRING_MIN (64u << 10)
#define SHMRING_MAX (1u << 30)

#define SHMRING_PROCS 24 /* Python processes of one tree walked at once */

/*
 * How one Python process of the ring's tree walks its stacks: the agent
 * writes it (recording__python) when it has read the interpreter's layout,
 * as it fills the BPF map py_procs for a process with uprobes. The
 * recorder takes the slot whose pid and image are its own: an exec'd
 * image (same pid) never walks with its predecessor's offsets. seq is odd
 * while the agent writes the slot; pid 0 is a free slot.
 */
struct shmring_proc {
	uint32_t pid;
	uint32_t seq;
	uint64_t image; /* the image's AT_RANDOM bytes (getauxval) */
	uint64_t code_type; /* &PyCode_Type in the process */
	uint32_t tp_dealloc; /* offset of tp_dealloc in a type object */
	uint32_t unused;
	struct py_cfg cfg;
};

/* The header page, shared by the writers and the reader. */
struct shmring_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t unused;
	uint64_t size; /* data bytes: a power of two */
	/*
	 * The agent reading the ring (its pid), 0 for none: writers record
	 * only while it is set. A kernel's recorder makes its ring at start
	 * and waits there, one load per call, until an agent adopts it.
	 */
	uint32_t consumer;
	uint32_t unused2;
	_Alignas(64) uint64_t reserved; /* bytes reserved since creation */
	_Alignas(64) uint64_t taken; /* bytes the reader took */
	_Alignas(64) uint64_t dropped; /* records that did not fit */
	uint64_t dropped_bytes;
	_Alignas(64) uint64_t procs_gen; /* bumped at every change of procs */
	struct shmring_proc procs[SHMRING_PROCS];
};

_Static_assert(sizeof(struct shmring_hdr) <= SHMRING_HDR, "the ring's header "
							  "must fit its page");

/* Each record starts with its length (8-aligned, header included). */
struct shmring_rec {
	uint32_t len; /* 0 until committed */
	uint32_t unused;
	unsigned char data[];
};

/* One side's view of a ring: the header, the doubled data, its fd. */
struct shmring {
	struct shmring_hdr *hdr;
	unsigned char *data; /* size bytes, then the same again */
	uint64_t size, mask;
	int fd;
};

/*
 * A new ring of size data bytes (a power of two, SHMRING_MIN to
 * SHMRING_MAX) in a memfd (its fd stays open in r->fd, for a child to
 * inherit or another process to open). 0 or -errno.
 */
int shmring__create(struct shmring *r, uint64_t size);
/* Map a ring someone else made (its memfd); its header is checked. */
int shmring__map(struct shmring *r, int fd);
/* Unmap and close. */
void shmring__close(struct shmring *r);

/*
 * Room for a record of len data bytes, or NULL when the ring is full
 * (counted in dropped). Commit it with shmring__commit.
 */
void *shmring__reserve(struct shmring *r, uint32_t len);
/* Publish a reserved record to the reader. */
void shmring__commit(struct shmring *r, void *data);

/*
 * The reader: fn for each committed record, in order, until fn returns
 * false (that record stays, for the next call). The count taken.
 */
typedef bool shmring_fn(const void *data, uint32_t len, void *ctx);
size_t shmring__consume(struct shmring *r, shmring_fn *fn, void *ctx);
/* The same, for the records reserved before the count end only. */
size_t shmring__consume_to(struct shmring *r, uint64_t end, shmring_fn *fn,
			   void *ctx);
/* How far the reader has taken: the reserved count it stands at. */
static inline uint64_t shmring__taken(const struct shmring *r)
{
	return __atomic_load_n(&r->hdr->taken, __ATOMIC_ACQUIRE);
}

/*
 * The first record is reserved but not committed: its writer may have
 * died between the two (SIGKILL, the OOM killer). Skip it (counted in
 * dropped) and say so; the caller decides when it has waited long
 * enough. false when the first record is committed, or none is reserved.
 */
bool shmring__skip_head(struct shmring *r);

/*
 * The calling process's image: its AT_RANDOM bytes, the ones exec wrote
 * and the agent reads in /proc/PID/auxv (shmring_proc.image, REC_IMAGE).
 */
uint64_t shmring__image(void);

#endif
