/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's state, shared by its stages (attach, events, views, main). */
#ifndef MEMPROF_AGENT_H
#define MEMPROF_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include "options.h"
#include "procs/tracee.h"

struct census_job;
struct memprof_bpf;
struct query_server;
struct ring_buffer;
struct topview;

#define MAX_SELF 32

struct recording;

struct agent {
	struct env env;
	struct memprof_bpf *skel;
	struct ring_buffer *rb;
	struct tracees procs;
	pid_t self[MAX_SELF]; /* the agent and its ancestors: never traced */
	int nself;
	pid_t primary; /* the "--" command, 0 when none */
	int primary_status; /* its wait status once reaped */
	bool primary_reaped;
	bool primary_done;
	uint64_t now_ns; /* CLOCK_MONOTONIC when the ring was last read */
	uint64_t finished_ns; /* when the final snapshots were written */
	uint64_t records; /* ring-buffer records consumed */
	uint64_t unknown_records;
	int write_errors; /* snapshots that could not be written */
	unsigned snapshots_written;
	uint64_t last_periodic_ns; /* --snapshot-every */
	char last_snapshot[4200]; /* path of the latest one, for the view */
	struct topview *view; /* the live terminal view, NULL: line output */
	FILE *out; /* report lines and per-cell tables */
	char publish_dir[256]; /* per-process state for %memprof */
	bool publishing;
	struct query_server *query; /* agent.sock for big_objs(), or NULL */
	struct census_job *census; /* the census being read, or NULL */
	struct census_job *census_merging; /* read, its ring being drained */
	struct recording *rec; /* --probes recorder: the command's ring */
	int census_efd; /* its thread says it is done here, -1 none */
	int exit_code;
};

#endif
