// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target for the snapshot reader (`make fuzz`, `make fuzz-smoke`).
 * Each input goes through the checks `report` and `diff` apply to a file
 * (snapfile__load_buffer shares them with snapfile__load): plain or
 * gzipped, version 1 or version 2, whose tables and indexes are checked
 * as it is expanded (format/snapv2.c; the corpus has v2 seeds both ways,
 * tests/fuzz/corpus/NAME-v2.json and .json.gz). A document they
 * accept is then printed every way those commands print one: the text
 * tables (all, by cell, by stack, by file; 10 rows and every row), the
 * folded stacks, the HTML page, the pprof profile, and a diff against itself and against a
 * fixed valid snapshot, both ways. Output goes to /dev/null: the sanitizers watch the
 * reading, not the text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "offline/diff.h"
#include "format/html.h"
#include "offline/report.h"
#include "format/folded.h"
#include "format/pprof.h"
#include "format/snapfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A notebook's snapshot with cells, Python and native frames, markers. */
static const char SEED[] =
	"{\"schema\": \"memprof-bpf/snapshot\", \"version\": 1, \"pid\": 42,"
	" \"comm\": \"ipykernel\", \"reason\": \"exit\","
	" \"taken_at\": \"2026-01-01T00:00:10.000Z\", \"dropped_events\": 1,"
	" \"peak_cell\": \"In [3]\","
	" \"peak\": {\"bytes\": 200000000, \"count\": 5,"
	"  \"at\": \"2026-01-01T00:00:05.000Z\", \"stacks\": ["
	"  {\"bytes\": 134217728, \"count\": 1, \"cell\": \"In [3]\","
	"   \"frames\": ["
	"   {\"function\": \"<module>\","
	"    \"file\": \"/tmp/ipykernel_42/3507.py\", \"line\": 1,"
	"    \"native\": false},"
	"   {\"function\": \"merge\", \"file\": \"/py/frame.py\","
	"    \"line\": 10090, \"native\": false},"
	"   {\"function\": \"malloc\", \"module\": \"/lib/libc.so.6\","
	"    \"offset\": 16, \"native\": true}]},"
	"  {\"bytes\": 50000000, \"count\": 2, \"cell\": \"In [1]\","
	"   \"frames\": ["
	"   {\"function\": \"load\", \"file\": \"/home/u/data.py\","
	"    \"line\": 7, \"native\": false},"
	"   {\"function\": null, \"module\": \"/usr/bin/python3.11\","
	"    \"offset\": 4096, \"native\": true}]},"
	"  {\"bytes\": 15782272, \"count\": 2, \"cell\": null, \"frames\": ["
	"   {\"function\": \"[native thread]\", \"native\": false},"
	"   {\"function\": \"blas_alloc\","
	"    \"module\": \"/lib/libopenblas.so.0\", \"native\": true}]},"
	"  {\"bytes\": 0, \"count\": 1, \"cell\": null, \"frames\": []}],"
	"  \"cells\": ["
	"  {\"label\": \"In [1]\", \"source_head\": \"df = load()\","
	"   \"file\": \"/tmp/ipykernel_42/1111.py\","
	"   \"peak_above_start\": 50000000,"
	"   \"bytes_at_process_peak\": 50000000, \"count\": 1200},"
	"  {\"label\": \"In [3]\", \"source_head\": \"m = df.merge(df)\","
	"   \"file\": \"/tmp/ipykernel_42/3507.py\","
	"   \"peak_above_start\": 150000000,"
	"   \"bytes_at_process_peak\": 134217728, \"count\": 10},"
	"  {\"label\": \"(outside cells)\", \"source_head\": null,"
	"   \"peak_above_start\": null,"
	"   \"bytes_at_process_peak\": 15782272, \"count\": 5}]},"
	" \"current\": {\"bytes\": 0, \"count\": 0, \"at\": \"x\","
	"  \"stacks\": [], \"cells\": []}}";

static FILE *devnull;
static json_t *seed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	seed = snapfile__load_buffer(SEED, sizeof(SEED) - 1, "seed", err,
				     sizeof(err));
	if (!devnull || !seed) {
		fprintf(stderr, "fuzz_snapshot: %s\n",
			seed ? "cannot open /dev/null" : err);
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum report_by by[] = { REPORT_BY_ALL, REPORT_BY_CELL,
					     REPORT_BY_STACK, REPORT_BY_FILE };
	static const int tops[] = { 10, 1000000 };
	char err[512];
	json_t *doc = snapfile__load_buffer((const char *)data, size, "input",
					    err, sizeof(err));
	size_t i, j;

	if (!doc)
		return 0;
	for (i = 0; i < sizeof(by) / sizeof(by[0]); i++)
		for (j = 0; j < sizeof(tops) / sizeof(tops[0]); j++) {
			struct report_opts o = { .by = by[i],
						 .format = REPORT_TEXT,
						 .top = tops[j] };

			report__text(devnull, doc, &o);
		}
	folded__write(devnull, doc);
	html__write(devnull, doc);
	pprof__write(devnull, doc);
	diff__print(devnull, doc, doc, "input", "input", 10);
	diff__print(devnull, seed, doc, "seed", "input", 1000000);
	diff__print(devnull, doc, seed, "input", "seed", 10);
	json_decref(doc);
	return 0;
}
