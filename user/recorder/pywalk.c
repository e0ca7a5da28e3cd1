// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The in-process Python stack walk (pywalk.h). The walk reads the
 * allocating thread's own frames with plain loads: on that thread, in the
 * middle of one of its allocations, the chain is consistent (CPython links
 * a frame before it publishes it), and every code object on it is alive.
 * Offsets come from the agent and are checked against this image; code
 * objects are checked against PyCode_Type before their fields are read.
 *
 * Code ids follow bpf/pystack.bpf.h: address, names, first line, the
 * filename's content and a birth. Births are kept in a table by address
 * that PyCode_Type's tp_dealloc (hooked here, as the BPF path probes it)
 * clears, so a code object freed and replaced at the same address (the
 * next notebook cell) gets a new id, and its REC_CODE_FREE reaches the
 * agent before the allocations of the code that replaced it.
 *
 * One lock guards the tables: it is taken with a compare-and-swap and
 * never waited for by its own holder (a signal handler that allocates
 * while its thread walks gets stack 0, a native site).
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "recorder/pywalk.h"

#define TABLE_SLOTS (1u << 16)
#define TABLE_FULL (TABLE_SLOTS / 4 * 3)
#define TOMBSTONE 1ull /* a deleted code: keeps probe chains intact */
#define SPINS (1u << 20)
#define OB_TYPE 8 /* PyObject: ob_refcnt, then ob_type (GIL builds) */
#define TSS_KEY_INIT 4 /* Py_tss_t: _is_initialized, 4 bytes before _key */

/* A code object seen in a stack: its id, and whether its names were sent. */
struct code_slot {
	uint64_t code, id;
	bool sent;
};

/* This process's walk: its slot in the ring header and the tables. */
static struct {
	uint64_t procs_gen; /* header generation last read */
	uint32_t pid;
	bool on;
	uint64_t image; /* this image's AT_RANDOM bytes */
	uint64_t code_type;
	struct py_cfg cfg;
	struct shmring *ring;
	uint64_t births;
	uint32_t ncodes, nstacks;
	struct code_slot codes[TABLE_SLOTS];
	uint64_t stacks[TABLE_SLOTS]; /* ids of stacks sent */
} w = { .procs_gen = ~0ull };

static uint32_t lock_owner; /* tid holding the tables, or 0 */
static void (*real_code_dealloc)(void *);

/*
 * The tables, for tid: false when its own walk holds them (a signal
 * handler on the walking thread) or another holder never lets go.
 */
static bool lock_tables(uint32_t tid)
{
	uint32_t free_ = 0, spins;

	for (spins = 0; spins < SPINS; spins++) {
		if (__atomic_compare_exchange_n(&lock_owner, &free_, tid, false,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return true;
		if (free_ == tid)
			return false;
		free_ = 0;
		if (spins & 255)
			__builtin_ia32_pause();
		else
			sched_yield();
	}
	return false;
}

static void unlock_tables(void)
{
	__atomic_store_n(&lock_owner, 0, __ATOMIC_RELEASE);
}

static uint64_t load64(uint64_t addr)
{
	return *(const uint64_t *)addr;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Room for a record; NULL when the ring is full (counted there). */
static void *record(uint32_t type, uint32_t size)
{
	struct rec_hdr *h = shmring__reserve(w.ring, size);

	if (h) {
		h->type = type;
		h->pid = w.pid;
	}
	return h;
}

/* ---- code objects ------------------------------------------------------ */

static uint32_t slot_of(uint64_t key)
{
	return (uint32_t)(py_mix(0, key) >> 48) & (TABLE_SLOTS - 1);
}

static struct code_slot *code_find(uint64_t code)
{
	uint32_t i = slot_of(code), n;

	for (n = 0; n < TABLE_SLOTS; n++, i = (i + 1) & (TABLE_SLOTS - 1)) {
		if (w.codes[i].code == code)
			return &w.codes[i];
		if (!w.codes[i].code)
			return NULL;
	}
	return NULL;
}

/*
 * Both tables start again when one is three quarters full: every code
 * then gets a new birth, a new id and its names sent again, which the
 * agent takes as new codes (exact, only more records).
 */
static void tables_reset(void)
{
	memset(w.codes, 0, sizeof(w.codes));
	memset(w.stacks, 0, sizeof(w.stacks));
	w.ncodes = w.nstacks = 0;
}

static struct code_slot *code_add(uint64_t code)
{
	uint32_t i;

	if (w.ncodes >= TABLE_FULL)
		tables_reset();
	for (i = slot_of(code); w.codes[i].code > TOMBSTONE;
	     i = (i + 1) & (TABLE_SLOTS - 1))
		;
	w.ncodes++;
	w.codes[i].code = code;
	w.codes[i].sent = false;
	return &w.codes[i];
}

/* The str's content, as bpf/pystack.bpf.h's str_identity sees it. */
static uint64_t str_identity(uint64_t str)
{
	int64_t hash = (int64_t)load64(str + w.cfg.str_hash), len;
	uint64_t tail[2] = { 0, 0 };

	if (hash != -1)
		return (uint64_t)hash;
	len = (int64_t)load64(str + w.cfg.str_length);
	if (len >= 16)
		memcpy(tail, (const void *)(str + w.cfg.ascii_data + len - 16),
		       sizeof(tail));
	return py_mix(py_mix((uint64_t)len, tail[0]), tail[1]);
}

/* A compact ASCII str's characters into buf, cut to its size. */
static void copy_str(char *buf, size_t size, uint64_t str)
{
	const char *s = str ? (const char *)(str + w.cfg.ascii_data) : "";
	size_t n = strnlen(s, size - 1);

	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* A code object's names and line table, once per id. */
static bool send_code(uint64_t code, uint64_t id)
{
	struct rec_pycode *r = record(REC_PYCODE, sizeof(*r));
	uint64_t table, size;

	if (!r)
		return false;
	r->code_id = id;
	r->code = code;
	r->firstlineno = *(const int32_t *)(code + w.cfg.co_firstlineno);
	copy_str(r->filename, sizeof(r->filename),
		 load64(code + w.cfg.co_filename));
	copy_str(r->name, sizeof(r->name), load64(code + w.cfg.co_name));
	r->table_len = PY_TABLE_NONE;
	if (w.cfg.co_linetable != PY_FIELD_NONE &&
	    (table = load64(code + w.cfg.co_linetable)) &&
	    (size = load64(table + w.cfg.bytes_size)) <= PY_TABLE_LEN) {
		memcpy(r->table, (const void *)(table + w.cfg.bytes_data),
		       size);
		r->table_len = (uint32_t)size;
	}
	shmring__commit(w.ring, r);
	return true;
}

/* The id of a live code object; its names go out the first time. */
static uint64_t code_id(uint64_t code)
{
	struct code_slot *c = code_find(code);
	uint64_t file, name, id;
	int32_t first;

	if (!c) {
		file = load64(code + w.cfg.co_filename);
		name = load64(code + w.cfg.co_name);
		first = *(const int32_t *)(code + w.cfg.co_firstlineno);
		id = py_mix(
			py_mix(py_mix(py_mix(w.cfg.gen ^ w.pid, code), file),
			       name),
			(uint64_t)(int64_t)first);
		id = py_mix(id, str_identity(file));
		c = code_add(code);
		c->id = py_mix(id, ++w.births);
	}
	if (!c->sent)
		c->sent = send_code(code, c->id);
	return c->id;
}

/*
 * PyCode_Type's tp_dealloc: a code object in a stack is going, and its
 * address may come back as another code object. Its entry goes, and the
 * agent hears of it (unmarked cells end there) before anything that
 * code object's successor allocates.
 */
static void code_dealloc(void *obj)
{
	uint64_t code = (uint64_t)obj;
	struct rec_code_free *r;
	struct code_slot *c;

	/* Rare (cells, exec'd code, shutdown): the syscall is affordable. */
	if (lock_tables((uint32_t)syscall(SYS_gettid))) {
		c = w.on ? code_find(code) : NULL;
		if (c) {
			c->code = TOMBSTONE;
			if ((r = record(REC_CODE_FREE, sizeof(*r)))) {
				r->code = code;
				r->ts_ns = now_ns();
				shmring__commit(w.ring, r);
			}
		}
		unlock_tables();
	}
	real_code_dealloc(obj);
}

/* Hook tp_dealloc once per image (a forked child keeps its parent's). */
static void hook_code_dealloc(uint64_t type, uint32_t slot_off)
{
	void **slot = (void **)(type + slot_off);
	void *cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (cur == (void *)code_dealloc)
		return;
	real_code_dealloc = (void (*)(void *))cur;
	__atomic_store_n(slot, (void *)code_dealloc, __ATOMIC_RELEASE);
}

/* ---- configuration ----------------------------------------------------- */

/*
 * This process's slot, read under its sequence number; walking stops
 * when it goes (exit, exec seen by the agent) or names another image.
 */
static void configure(uint64_t gen)
{
	const struct shmring_hdr *h = w.ring->hdr;
	struct shmring_proc p;
	uint32_t seq;
	int i;

	w.procs_gen = gen;
	if (!w.image)
		w.image = shmring__image();
	for (i = 0; i < SHMRING_PROCS; i++) {
		if (__atomic_load_n(&h->procs[i].pid, __ATOMIC_ACQUIRE) !=
		    w.pid)
			continue;
		seq = __atomic_load_n(&h->procs[i].seq, __ATOMIC_ACQUIRE);
		memcpy(&p, &h->procs[i], sizeof(p));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if ((seq & 1) || seq != __atomic_load_n(&h->procs[i].seq,
							__ATOMIC_RELAXED)) {
			w.procs_gen = ~0ull; /* being written: read again */
			return;
		}
		if (p.pid != w.pid || p.image != w.image || !p.code_type ||
		    !p.cfg.runtime || p.cfg.depth > PY_MAX_DEPTH)
			continue;
		if (w.on && p.cfg.gen != w.cfg.gen)
			tables_reset(); /* ids of another configuration */
		w.cfg = p.cfg;
		w.code_type = p.code_type;
		hook_code_dealloc(p.code_type, p.tp_dealloc);
		w.on = true;
		return;
	}
	w.on = false;
}

/* ---- the walk ----------------------------------------------------------- */

/* This thread's PyThreadState (3.15: a TLS slot; before: autoTSSkey). */
static uint64_t thread_state(void)
{
	uint64_t tp, key_at = w.cfg.runtime + w.cfg.tss_key;

	if (w.cfg.tls_off) {
		__asm__("mov %%fs:0, %0" : "=r"(tp));
		return load64(tp + (int64_t)w.cfg.tls_off);
	}
	if (!*(const int32_t *)(key_at - TSS_KEY_INIT))
		return 0; /* before Py_Initialize, after finalization */
	return (uint64_t)pthread_getspecific(*(const pthread_key_t *)key_at);
}

static uint64_t first_frame(uint64_t ts)
{
	uint64_t cframe;

	if (w.cfg.ts_frame != PY_FIELD_NONE)
		return load64(ts + w.cfg.ts_frame);
	cframe = load64(ts + w.cfg.ts_cframe);
	return cframe ? load64(cframe + w.cfg.cframe_current) : 0;
}

/* A stack's frames, sent the first time its id is seen. */
static void send_stack(uint64_t id, const struct py_frame *frames,
		       uint32_t depth, bool truncated)
{
	struct rec_pystack *r;
	uint32_t i = (uint32_t)(id >> 16) & (TABLE_SLOTS - 1);

	for (; w.stacks[i]; i = (i + 1) & (TABLE_SLOTS - 1))
		if (w.stacks[i] == id)
			return;
	r = record(REC_PYSTACK, sizeof(*r));
	if (!r)
		return; /* not marked: sent at its next sighting */
	r->stack_id = id;
	r->depth = depth;
	r->truncated = truncated;
	r->ts_ns = now_ns();
	memcpy(r->frames, frames, depth * sizeof(*frames));
	shmring__commit(w.ring, r);
	if (++w.nstacks >= TABLE_FULL)
		tables_reset();
	else
		w.stacks[i] = id;
}

/* The walk itself, under the lock, once configured. */
static uint64_t walk(void)
{
	struct py_frame frames[PY_MAX_DEPTH];
	uint64_t ts = thread_state(), fr, code, instr, hash;
	uint32_t i, depth = 0;

	if (!ts)
		return PY_STACK_NATIVE_THREAD; /* BLAS, ZMQ: no Python state */
	hash = w.cfg.gen ^ w.pid;
	fr = first_frame(ts);
	for (i = 0; i < w.cfg.depth && fr && !(fr & 7); i++) {
		const unsigned char *h = (const unsigned char *)fr;

		fr = load64((uint64_t)h + w.cfg.fr_back);
		if (w.cfg.fr_owner != PY_FIELD_NONE &&
		    h[w.cfg.fr_owner] >= PY_OWNER_NOT_PYTHON)
			continue; /* C-stack or interpreter shim (3.12+) */
		code = load64((uint64_t)h + w.cfg.fr_code) & ~w.cfg.exec_mask;
		if (!code || (code & 7) ||
		    load64(code + OB_TYPE) != w.code_type)
			continue;
		instr = w.cfg.instr_is_ptr
				? load64((uint64_t)h + w.cfg.fr_instr)
				: (uint64_t)(int64_t) *
					  (const int32_t *)(h + w.cfg.fr_instr);
		frames[depth].code_id = code_id(code);
		frames[depth].lasti = py_lasti(&w.cfg, code, instr);
		frames[depth].unused = 0;
		hash = py_mix(py_mix(hash, frames[depth].code_id), instr);
		depth++;
	}
	if (!depth)
		return PY_STACK_NATIVE_THREAD;
	hash |= 1; /* never 0 */
	send_stack(hash, frames, depth, fr != 0 && i >= w.cfg.depth);
	return hash;
}

uint64_t pywalk__stack(struct shmring *ring, uint32_t pid, uint32_t tid)
{
	uint64_t gen = __atomic_load_n(&ring->hdr->procs_gen, __ATOMIC_ACQUIRE);
	uint64_t id = 0;

	if (gen == w.procs_gen && !w.on)
		return 0; /* not a configured Python: one load */
	if (!lock_tables(tid))
		return 0;
	w.ring = ring;
	w.pid = pid;
	if (gen != w.procs_gen)
		configure(gen);
	if (w.on)
		id = walk();
	unlock_tables();
	return id;
}

void pywalk__after_fork(void)
{
	lock_owner = 0; /* a thread of the parent may have held it */
	w.procs_gen = ~0ull;
	w.on = false;
}
