/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Text for people: byte and rate units, and the file name of a path. Shared
 * by the live views and the offline commands, so it needs nothing else.
 */
#ifndef MEMPROF_TEXT_H
#define MEMPROF_TEXT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Human units: 1023 B, 1.5 KiB, 12.3 MiB, 2.0 GiB. */
void text__bytes(uint64_t bytes, char *buf, size_t size);
/* 950, 12.3k, 4.5M: rates per second. */
void text__count(double n, char *buf, size_t size);
/* The part after the last '/'; NULL stays NULL. */
const char *text__base_name(const char *path);
/* Does s end with suffix? */
bool text__ends_with(const char *s, const char *suffix);

#endif
