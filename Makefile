# memprof-bpf build. Pattern: bpf/X.bpf.c -> build/X.bpf.o -> build/X.skel.h,
# agent objects in build/, the agent at ./memprof-bpf. Quiet unless V=1.
.DELETE_ON_ERROR:
.DEFAULT_GOAL := all

OUT := build
CLANG ?= clang
CC ?= gcc
BPFTOOL ?= bpftool
ARCH := x86
V ?= 0
ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

DEPS_STAMP := $(OUT)/.deps-ok
CFLAGS ?= -O2 -g
CFLAGS += -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror -I$(OUT) -Ibpf -Iuser
LDLIBS := -lbpf -lelf -lz -ljansson -lcapstone -lncursesw -lpthread \
	-lprotobuf-c
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(OUT) -Ibpf -I/usr/include/x86_64-linux-gnu

# user/ is in folders by pipeline stage (README, "Architecture"); module
# names are unique across them, so objects stay flat in build/. Every
# module except main; unit tests link against these.
USER_DIRS := user $(sort $(dir $(wildcard user/*/*.c)))
USER_HDRS := $(wildcard user/*.h user/*/*.h)
LIB_SRCS := $(filter-out user/main.c user/recorder/recorder.c user/recorder/pywalk.c,$(wildcard user/*.c user/*/*.c))
LIB_OBJS := $(addprefix $(OUT)/,$(notdir $(LIB_SRCS:.c=.o)))
# pprof's schema (user/format/profile.proto), compiled by protoc-c at build
# time into $(OUT): the generated code is never committed.
PROTO_OBJS := $(OUT)/profile.pb-c.o
LIB_OBJS += $(PROTO_OBJS)
vpath %.c $(USER_DIRS)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/unit/%,$(UNIT_SRCS))
PROG_SRCS := $(wildcard tests/progs/*.c)
PROG_BINS := $(patsubst tests/progs/%.c,$(OUT)/progs/%,$(PROG_SRCS))
BENCH_SRCS := $(wildcard tests/bench/*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(OUT)/bench/%,$(BENCH_SRCS))
# Debian's python3 (pytest, numpy); a pyenv shim may shadow python3 on PATH.
PYTHON ?= /usr/bin/python3
RECORDER_SO := $(OUT)/libmemprof-recorder.so

.PHONY: sid-root-early all deps test unit integration lint format clean bench demo fuzz fuzz-smoke test-repeat

all: memprof-bpf $(RECORDER_SO)

# Install missing Debian packages once per build tree (scripts/install-deps.sh
# is idempotent and cheap when everything is present).
$(DEPS_STAMP): scripts/install-deps.sh
	$(call msg,DEPS,$<)
	$(Q)mkdir -p $(OUT) && bash scripts/install-deps.sh && touch $@

deps: $(DEPS_STAMP)

# vmlinux.h comes from the running kernel's BTF: CO-RE relocates field
# offsets at load time, so the header only needs to name the types.
$(OUT)/vmlinux.h: | $(DEPS_STAMP)
	$(call msg,BTF,$@)
	$(Q)test -r /sys/kernel/btf/vmlinux || { echo "memprof-bpf: this kernel has no BTF (/sys/kernel/btf/vmlinux)" >&2; exit 2; }
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(OUT)/%.bpf.o: bpf/%.bpf.c $(wildcard bpf/*.h) $(OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(OUT)/%.o: %.c $(USER_HDRS) bpf/memprof.h $(OUT)/memprof.skel.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The HTML export's page is assembled into html.o (.incbin).
$(OUT)/html.o: user/format/flamegraph.html

$(OUT)/%.pb-c.c $(OUT)/%.pb-c.h: user/format/%.proto | $(DEPS_STAMP)
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(OUT)
	$(Q)protoc-c --proto_path=user/format --c_out=$(OUT) $<

$(OUT)/%.pb-c.o: $(OUT)/%.pb-c.c $(OUT)/%.pb-c.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# Who includes the generated header needs it first.
$(OUT)/pprof.o $(OUT)/unit/test_pprof: $(OUT)/profile.pb-c.h

memprof-bpf: $(OUT)/main.o $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# The in-process recorder (issue 17, being built): a preloaded library of
# its own, never linked into the agent (RECORDER_SO, above).
$(RECORDER_SO): user/recorder/recorder.c user/recorder/pywalk.c user/recorder/pywalk.h user/recorder/shmring.c user/recorder/shmring.h bpf/memprof.h | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(OUT)
	$(Q)$(CC) -O2 -g -fPIC -shared -fvisibility=hidden -D_GNU_SOURCE -std=gnu11 -Wall -Wextra -Werror -Ibpf -Iuser user/recorder/recorder.c user/recorder/pywalk.c user/recorder/shmring.c -ldl -pthread -o $@

# The notebook extension's cell markers (python/): memprof:cell__start and
# cell__end USDT probes in a plain shared library the extension loads with
# ctypes. Its name is what the agent looks for in /proc/PID/maps.
MARKERS_SO := python/memprof_bpf/_memprof_markers.so

.PHONY: python
python: $(MARKERS_SO)

$(MARKERS_SO): python/memprof_bpf/markers.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)$(CC) -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror $< -o $@

# ---- tests -----------------------------------------------------------------

$(OUT)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB_OBJS)
	$(call msg,UNIT,$@)
	$(Q)mkdir -p $(OUT)/unit
	$(Q)$(CC) $(CFLAGS) $< $(LIB_OBJS) $(LDLIBS) -lcriterion -o $@

# Test programs: -O0 -g and frame pointers so call sites stay where the
# source puts them; -fno-builtin keeps malloc calls real calls.
$(OUT)/progs/%: tests/progs/%.c
	$(call msg,PROG,$@)
	$(Q)mkdir -p $(OUT)/progs
	$(Q)$(CC) -O0 -g -fno-builtin -fno-omit-frame-pointer -pthread $< -o $@

# Benchmark drivers: -O2, linked against the agent's modules where needed.
$(OUT)/bench/%: tests/bench/%.c $(LIB_OBJS)
	$(call msg,BENCH,$@)
	$(Q)mkdir -p $(OUT)/bench
	$(Q)$(CC) $(CFLAGS) -pthread $< $(LIB_OBJS) $(LDLIBS) -o $@

unit: $(UNIT_BINS) $(RECORDER_SO) $(PROG_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do echo "  RUN      $$t"; $$t --jobs 1; done

integration: memprof-bpf $(PROG_BINS) $(BENCH_BINS) $(MARKERS_SO)
	$(Q)$(PYTHON) -m pytest -q --timeout 180 tests/python
	$(Q)$(PYTHON) -m pytest -q --timeout 180 tests/integration

test: deps sid-root-early lint unit fuzz-smoke integration

# The Debian unstable root (glibc 2.43, Python 3.14/3.15: scripts/sid-root.sh)
# takes minutes on a fresh machine: it is made in the background while lint,
# unit tests and fuzzing run, and the tests that need it wait on its lock.
sid-root-early: | $(DEPS_STAMP)
	$(Q)if [ ! -f /var/cache/memprof-bpf/sid/.complete ]; then \
		echo "  SID      making the Debian unstable root in the background ($(OUT)/sid-root.log)"; \
		nohup bash scripts/sid-root.sh > $(OUT)/sid-root.log 2>&1 < /dev/null & \
	fi

# make test N times on a fresh clone of HEAD, the first STRESSED of them with
# one core kept busy (scripts/test-repeat): flaky tests show up here.
N ?= 10
STRESSED ?= 3
test-repeat:
	$(Q)bash scripts/test-repeat $(N) $(STRESSED)

lint: | $(DEPS_STAMP)
	$(Q)clang-format --dry-run --Werror bpf/*.c bpf/*.h user/*.c user/*.h user/*/*.c user/*/*.h tests/unit/*.c tests/fuzz/*.c tests/progs/*.c python/memprof_bpf/*.c
	@echo "  LINT     ok"

format:
	$(Q)clang-format -i bpf/*.c bpf/*.h user/*.c user/*.h user/*/*.c user/*/*.h tests/unit/*.c tests/fuzz/*.c tests/progs/*.c python/memprof_bpf/*.c

# ---- fuzzing ---------------------------------------------------------------
# libFuzzer (clang) over the snapshot reader that report and diff use:
# tests/fuzz/fuzz_snapshot.c, with the modules it needs built again by clang
# with ASan and UBSan into $(FUZZ_OUT)/obj (apart from the gcc objects).
# Any sanitizer report aborts the run and fails the target; the input is
# kept in $(FUZZ_OUT)/crashes. `make fuzz` grows $(FUZZ_OUT)/corpus (the
# seeds of tests/fuzz/corpus copied in) for FUZZ_TIME seconds; `make
# fuzz-smoke` (part of `make test`) runs FUZZ_SMOKE_TIME seconds from the
# seeds alone.
FUZZ_OUT := $(OUT)/fuzz
FUZZ_BIN := $(FUZZ_OUT)/fuzz_snapshot
# The offline readers and the file format only: they build without the
# live agent's modules, which this list proves at link time.
FUZZ_MODS := $(notdir $(basename $(wildcard user/format/*.c user/offline/*.c \
	user/lib/*.c)))
FUZZ_OBJS := $(patsubst %,$(FUZZ_OUT)/obj/%.o,$(FUZZ_MODS)) \
	$(FUZZ_OUT)/obj/profile.pb-c.o
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer $(FUZZ_SAN) -D_GNU_SOURCE \
	-std=gnu11 -Wall -Wextra -Werror -Iuser -I$(OUT)
FUZZ_TIME ?= 600
FUZZ_SMOKE_TIME ?= 30
FUZZ_FLAGS := -dict=tests/fuzz/snapshot.dict -max_len=8192 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix=$(FUZZ_OUT)/crashes/

$(FUZZ_OUT)/obj/%.o: %.c $(USER_HDRS) | $(DEPS_STAMP)
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(FUZZ_OUT)/obj
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_OUT)/obj/html.o: user/format/flamegraph.html
$(FUZZ_OUT)/obj/pprof.o: $(OUT)/profile.pb-c.h

$(FUZZ_OUT)/obj/profile.pb-c.o: $(OUT)/profile.pb-c.c $(OUT)/profile.pb-c.h
	$(call msg,FUZZ-CC,$@)
	$(Q)mkdir -p $(FUZZ_OUT)/obj
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BIN): tests/fuzz/fuzz_snapshot.c $(FUZZ_OBJS)
	$(call msg,FUZZ-LD,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -ljansson -lprotobuf-c \
		-lz -o $@

# The log's last lines: libFuzzer's final status line (cov, ft, corpus,
# exec/s) and its stat:: totals (number_of_executed_units).
fuzz: $(FUZZ_BIN)
	$(Q)mkdir -p $(FUZZ_OUT)/corpus $(FUZZ_OUT)/crashes
	$(Q)cp tests/fuzz/corpus/* $(FUZZ_OUT)/corpus/
	$(call msg,FUZZ,$(FUZZ_TIME) s: $(FUZZ_OUT)/fuzz.log)
	$(Q)rc=0; $(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) \
		$(FUZZ_OUT)/corpus > $(FUZZ_OUT)/fuzz.log 2>&1 || rc=$$?; \
	grep -E '^#[0-9]+' $(FUZZ_OUT)/fuzz.log | tail -n 1; \
	grep -E '^(stat::|Done )' $(FUZZ_OUT)/fuzz.log; \
	echo "  corpus   $$(ls $(FUZZ_OUT)/corpus | wc -l) files in $(FUZZ_OUT)/corpus"; \
	if [ $$rc -ne 0 ]; then tail -n 60 $(FUZZ_OUT)/fuzz.log; \
		echo "fuzz: failed (exit $$rc), see $(FUZZ_OUT)/fuzz.log" >&2; exit 1; fi

fuzz-smoke: $(FUZZ_BIN)
	$(Q)rm -rf $(FUZZ_OUT)/smoke && mkdir -p $(FUZZ_OUT)/smoke $(FUZZ_OUT)/crashes
	$(call msg,FUZZ,$(FUZZ_SMOKE_TIME) s smoke run)
	$(Q)rc=0; $(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SMOKE_TIME) \
		$(FUZZ_OUT)/smoke tests/fuzz/corpus > $(FUZZ_OUT)/smoke.log 2>&1 || rc=$$?; \
	if [ $$rc -ne 0 ]; then tail -n 60 $(FUZZ_OUT)/smoke.log; \
		echo "fuzz-smoke: failed (exit $$rc), see $(FUZZ_OUT)/smoke.log" >&2; exit 1; fi; \
	grep -E '^stat::number_of_executed_units' $(FUZZ_OUT)/smoke.log

demo: memprof-bpf $(MARKERS_SO)
	$(Q)bash scripts/demo

# The demo notebook in a memory cgroup too small for it: an OOM snapshot
# and its HTML page in demo-out/.
.PHONY: demo-oom
demo-oom: memprof-bpf $(MARKERS_SO)
	$(Q)bash scripts/demo-oom

# The Python workloads' optional peers (scalene, memory_profiler)
# come from install-deps.sh --bench, never from 'make test'.
bench: memprof-bpf $(PROG_BINS) $(BENCH_BINS)
	$(Q)bash scripts/install-deps.sh --bench
	$(Q)bash scripts/bench

clean:
	$(call msg,CLEAN)
	$(Q)rm -rf $(OUT) memprof-bpf demo-peak.json $(MARKERS_SO)

.SECONDARY:
