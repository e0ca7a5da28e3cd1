// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include "lib/u64map.h"
#include "unit.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void shuffle(uint64_t *v, size_t n)
{
	size_t i;

	for (i = n; i > 1; i--) {
		size_t j = rnd() % i;
		uint64_t t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static void put_ok(struct u64map *t, uint64_t addr, uint64_t size,
		   uint32_t site)
{
	struct u64map_entry old;
	bool replaced = true;

	cr_assert_eq(u64map__put(t, addr, size, site, &old, &replaced), 0);
	cr_assert(!replaced, "0x%llx was not live yet",
		  (unsigned long long)addr);
}

Test(u64map, put_get_take, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry b;
	const struct u64map_entry *g;

	cr_assert_eq(u64map__init(&t), 0);
	cr_assert_eq(t.len, 0);
	put_ok(&t, 0x5000, 48, 7);
	put_ok(&t, 0x5030, 16, 3);
	cr_assert_eq(t.len, 2);

	g = u64map__get(&t, 0x5000);
	cr_assert_not_null(g);
	cr_assert_eq(g->key, 0x5000);
	cr_assert_eq(g->val, 48);
	cr_assert_eq(g->tag, 7);
	cr_assert_null(u64map__get(&t, 0x5010));

	cr_assert(u64map__take(&t, 0x5030, &b));
	cr_assert_eq(b.key, 0x5030);
	cr_assert_eq(b.val, 16);
	cr_assert_eq(b.tag, 3);
	cr_assert_eq(t.len, 1);
	cr_assert_null(u64map__get(&t, 0x5030));
	cr_assert_not_null(u64map__get(&t, 0x5000));
	u64map__free(&t);
}

Test(u64map, put_replaces_existing_and_reports_old, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry old = { 0 }, b;
	bool replaced = false;

	cr_assert_eq(u64map__init(&t), 0);
	put_ok(&t, 0x7000, 100, 1);
	cr_assert_eq(u64map__put(&t, 0x7000, 250, 9, &old, &replaced), 0);
	cr_assert(replaced);
	cr_assert_eq(old.key, 0x7000);
	cr_assert_eq(old.val, 100);
	cr_assert_eq(old.tag, 1);
	cr_assert_eq(t.len, 1, "a replacement does not add an entry");
	cr_assert(u64map__take(&t, 0x7000, &b));
	cr_assert_eq(b.val, 250);
	cr_assert_eq(b.tag, 9);
	cr_assert_eq(t.len, 0);
	u64map__free(&t);
}

Test(u64map, take_unknown_returns_false, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry b = { .key = 0xdead, .val = 77, .tag = 5 };

	cr_assert_eq(u64map__init(&t), 0);
	cr_assert_not(u64map__take(&t, 0x1234, &b));
	put_ok(&t, 0x1000, 8, 0);
	cr_assert_not(u64map__take(&t, 0x2000, &b));
	cr_assert_eq(b.key, 0xdead, "out is untouched on a miss");
	cr_assert_eq(b.val, 77);
	cr_assert_eq(t.len, 1);
	cr_assert(u64map__take(&t, 0x1000, &b));
	cr_assert_not(u64map__take(&t, 0x1000, &b), "second take misses");
	cr_assert_eq(t.len, 0);
	u64map__free(&t);
}

#define MANY 200000

Test(u64map, growth_then_take_all_in_random_order, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry b;
	uint64_t *addrs = malloc(MANY * sizeof(*addrs));
	size_t i, cap0;

	cr_assert_not_null(addrs);
	rng_state = 0x1234567887654321ULL;
	/* Half clustered like a malloc arena, half scattered like mmaps. */
	for (i = 0; i < MANY / 2; i++)
		addrs[i] = 0x555555560000ULL + i * 32;
	/* j -> j * odd mod 2^28 is a bijection: unique, scattered. */
	for (; i < MANY; i++)
		addrs[i] = 0x7f0000000000ULL +
			   ((((uint64_t)i * 0x9E3779B1ULL) & 0xfffffff) << 4);
	cr_assert_eq(u64map__init(&t), 0);
	cap0 = t.cap;
	for (i = 0; i < MANY; i++) {
		struct u64map_entry old;
		bool replaced;

		/* size and site derived from the address, checked later */
		cr_assert_eq(u64map__put(&t, addrs[i], addrs[i] % 4093 + 1,
					 (uint32_t)(addrs[i] % 61), &old,
					 &replaced),
			     0);
		if (replaced) {
			/* not expected: the generator makes unique addrs */
			cr_assert_fail("duplicate address 0x%llx",
				       (unsigned long long)addrs[i]);
		}
	}
	cr_assert_eq(t.len, MANY);
	cr_assert_gt(t.cap, cap0 * 128, "grew through many resizes");
	cr_assert_eq(t.cap & (t.cap - 1), 0, "capacity stays a power of two");
	cr_assert_leq(t.len * 4, t.cap * 3, "load factor at most 3/4");
	cr_assert_eq(u64map__bytes(&t), t.cap * sizeof(struct u64map_entry));
	for (i = 0; i < MANY; i++) {
		const struct u64map_entry *g = u64map__get(&t, addrs[i]);

		if (!g || g->val != addrs[i] % 4093 + 1)
			cr_assert_fail("lookup %zu failed after growth", i);
	}
	shuffle(addrs, MANY);
	for (i = 0; i < MANY; i++) {
		if (!u64map__take(&t, addrs[i], &b))
			cr_assert_fail("take %zu of 0x%llx missed", i,
				       (unsigned long long)addrs[i]);
		if (b.key != addrs[i] || b.val != addrs[i] % 4093 + 1 ||
		    b.tag != addrs[i] % 61)
			cr_assert_fail("take %zu returned the wrong block", i);
		if (t.len != MANY - i - 1)
			cr_assert_fail("len %zu after %zu takes", t.len, i + 1);
	}
	cr_assert_eq(t.len, 0);
	for (i = 0; i < t.cap; i++)
		cr_assert_eq(t.slots[i].key, 0, "slot %zu not emptied", i);
	free(addrs);
	u64map__free(&t);
}

/*
 * Home slot of addr, observed rather than recomputed: in an empty table a
 * key lands exactly on its home slot.
 */
static size_t home_of(struct u64map *scratch, uint64_t addr)
{
	struct u64map_entry b;
	size_t slot;

	put_ok(scratch, addr, 1, 0);
	slot = u64map__get(scratch, addr) - scratch->slots;
	cr_assert(u64map__take(scratch, addr, &b));
	return slot;
}

#define NCOLL 14

/* Keys whose home slots are last-1 (6 keys), last (4) and 0 (4). */
static void colliding_keys(uint64_t *keys, size_t *homes)
{
	struct u64map scratch;
	size_t want[NCOLL], got = 0, i, last;
	uint64_t a;

	cr_assert_eq(u64map__init(&scratch), 0);
	last = scratch.cap - 1;
	for (i = 0; i < NCOLL; i++)
		want[i] = i < 6 ? last - 1 : i < 10 ? last : 0;
	for (a = 0x600000000010ULL; got < NCOLL; a += 16) {
		size_t h = home_of(&scratch, a);

		for (i = 0; i < NCOLL; i++) {
			if (!keys[i] && want[i] == h) {
				keys[i] = a;
				homes[i] = h;
				got++;
				break;
			}
		}
		cr_assert_lt(a, 0x600010000000ULL, "no collisions found");
	}
	u64map__free(&scratch);
}

Test(u64map, backward_shift_deletion_under_collisions, .timeout = 10)
{
	uint64_t keys[NCOLL] = { 0 }, order[NCOLL];
	size_t homes[NCOLL], i, j, trial;
	struct u64map t;
	struct u64map_entry b;

	colliding_keys(keys, homes);
	rng_state = 42;
	for (trial = 0; trial < 500; trial++) {
		bool gone[NCOLL] = { false };
		size_t ndel = 1 + rnd() % NCOLL;

		cr_assert_eq(u64map__init(&t), 0);
		for (i = 0; i < NCOLL; i++)
			order[i] = i;
		shuffle(order, NCOLL);
		for (i = 0; i < NCOLL; i++)
			put_ok(&t, keys[order[i]], 100 + order[i],
			       (uint32_t)order[i]);
		/* The cluster wraps around the end of the slot array. */
		cr_assert_neq(t.slots[0].key, 0);
		cr_assert_neq(t.slots[t.cap - 1].key, 0);
		shuffle(order, NCOLL);
		for (i = 0; i < ndel; i++) {
			size_t k = order[i];

			cr_assert(u64map__take(&t, keys[k], &b),
				  "trial %zu: take of key %zu", trial, k);
			cr_assert_eq(b.val, 100 + k);
			cr_assert_eq(b.tag, k);
			gone[k] = true;
			for (j = 0; j < NCOLL; j++) {
				const struct u64map_entry *g =
					u64map__get(&t, keys[j]);

				if (gone[j]) {
					cr_assert_null(g,
						       "trial %zu: key %zu "
						       "still found",
						       trial, j);
				} else {
					cr_assert_not_null(g,
							   "trial %zu: key %zu "
							   "lost after "
							   "deleting %zu",
							   trial, j, k);
					cr_assert_eq(g->val, 100 + j);
				}
			}
		}
		cr_assert_eq(t.len, NCOLL - ndel);
		u64map__free(&t);
	}
}

Test(u64map, delete_from_middle_of_one_run, .timeout = 10)
{
	uint64_t keys[NCOLL] = { 0 };
	size_t homes[NCOLL], i;
	struct u64map t;
	struct u64map_entry b;

	colliding_keys(keys, homes);
	cr_assert_eq(u64map__init(&t), 0);
	/* Six keys sharing one home slot form one probe run, in order. */
	for (i = 0; i < 6; i++)
		put_ok(&t, keys[i], i + 1, (uint32_t)i);
	cr_assert_eq(t.slots[homes[0]].key, keys[0]);
	cr_assert_eq(t.slots[homes[0] + 1].key, keys[1]);
	cr_assert_eq(t.slots[0].key, keys[2], "the run wraps to slot 0");
	cr_assert(u64map__take(&t, keys[2], &b));
	cr_assert_eq(b.val, 3);
	/* keys[3..5] shifted back one slot each: still found. */
	cr_assert_eq(t.slots[0].key, keys[3]);
	cr_assert_eq(t.slots[3].key, 0, "the run's tail slot is freed");
	for (i = 0; i < 6; i++) {
		const struct u64map_entry *g = u64map__get(&t, keys[i]);

		if (i == 2) {
			cr_assert_null(g);
		} else {
			cr_assert_not_null(g, "key %zu lost", i);
			cr_assert_eq(g->val, i + 1);
		}
	}
	u64map__free(&t);
}

Test(u64map, copy_is_independent, .timeout = 10)
{
	struct u64map a, c;
	struct u64map_entry b, old;
	bool replaced;
	uint64_t i;

	cr_assert_eq(u64map__init(&a), 0);
	for (i = 1; i <= 2000; i++)
		put_ok(&a, i * 16, i, (uint32_t)(i % 5));
	cr_assert_eq(u64map__copy(&c, &a), 0);
	cr_assert_eq(c.len, 2000);
	cr_assert_eq(c.cap, a.cap);
	cr_assert_neq(c.slots, a.slots);

	/* Change the original: the copy keeps its own blocks. */
	cr_assert(u64map__take(&a, 16, &b));
	cr_assert_eq(u64map__put(&a, 32, 999, 4, &old, &replaced), 0);
	put_ok(&a, 0x100000, 5, 1);
	cr_assert_not_null(u64map__get(&c, 16));
	cr_assert_eq(u64map__get(&c, 32)->val, 2);
	cr_assert_null(u64map__get(&c, 0x100000));
	cr_assert_eq(c.len, 2000);

	/* And the other way round. */
	cr_assert(u64map__take(&c, 48, &b));
	cr_assert_eq(b.val, 3);
	cr_assert_not_null(u64map__get(&a, 48));
	cr_assert_eq(a.len, 2000);
	for (i = 2; i <= 2000; i++)
		if (i != 3)
			cr_assert_eq(u64map__get(&c, i * 16)->val, i);
	u64map__free(&a);
	cr_assert_eq(u64map__get(&c, 64)->val, 4, "copy outlives source");
	u64map__free(&c);
}

Test(u64map, for_each_visits_every_live_block, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry *b, out;
	uint64_t sum = 0, n = 0, i;

	cr_assert_eq(u64map__init(&t), 0);
	for (i = 1; i <= 100; i++)
		put_ok(&t, 0x10000 + i * 16, i, 0);
	cr_assert(u64map__take(&t, 0x10000 + 50 * 16, &out));
	u64map__for_each(&t, b)
	{
		sum += b->val;
		n++;
	}
	cr_assert_eq(n, 99);
	cr_assert_eq(sum, 5050 - 50);
	u64map__free(&t);
}

/* Ids 1, 2, 3...: the Python tables' keys spread as well as addresses. */
Test(u64map, sequential_ids_and_key_zero, .timeout = 10)
{
	struct u64map t;
	struct u64map_entry old;
	bool replaced;
	uint64_t k;

	cr_assert_eq(u64map__init(&t), 0);
	cr_assert_eq(u64map__put(&t, 0, 1, 1, &old, &replaced), -EINVAL);
	for (k = 1; k <= 100000; k++)
		cr_assert_eq(u64map__put(&t, k, k * 2, (uint32_t)k, &old,
					 &replaced),
			     0);
	cr_assert_eq(t.len, 100000);
	for (k = 1; k <= 100000; k++) {
		const struct u64map_entry *e = u64map__get(&t, k);

		cr_assert_not_null(e);
		cr_assert_eq(e->val, k * 2);
	}
	cr_assert_null(u64map__get(&t, 100001));
	u64map__free(&t);
}

/* A map never initialised (a process without Python) reads as empty. */
Test(u64map, zeroed_map_is_empty, .timeout = 10)
{
	struct u64map t = { 0 }, c;
	struct u64map_entry e;

	cr_assert_null(u64map__get(&t, 42));
	cr_assert(!u64map__take(&t, 42, &e));
	cr_assert_eq(u64map__copy(&c, &t), 0);
	cr_assert_null(u64map__get(&c, 42));
	cr_assert_eq(u64map__bytes(&c), 0);
	u64map__free(&c);
}
