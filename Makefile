# gpufed build.
#
# The build is driven by file-naming conventions so that adding a module,
# a test or a fuzzer never requires editing this file:
#
#   MODULE/*.c                 -> $(B)/MODULE/lib.a   (one static library per module)
#   MODULE/main_NAME.c         -> $(B)/bin/NAME       (a program; not part of lib.a)
#   MODULE/test/test_NAME.c    -> $(B)/test/MODULE/test_NAME  (one cmocka binary
#                                 per module under test; other *.c files in
#                                 MODULE/test/ are support code linked into
#                                 every test binary of that module)
#   MODULE/fuzz/fuzz_NAME.c    -> libFuzzer target (make fuzz) and a corpus
#                                 replayer (make check) over
#                                 MODULE/fuzz/corpus/NAME/
#
# Variants live in their own build directories: build/debug (default),
# build/asan (ASan+UBSan), build/fuzz (clang, -fsanitize=fuzzer).
# A module may add rules of its own in MODULE/module.mk.

MODULES := common kubeclient policy controller e2e/kubesim e2e/bench

# What each module may link against, dependents first (static libraries are
# resolved left to right). This is DESIGN.md's dependency table made
# mechanical: a module that reaches "up" fails to link.
DEPS_common := common
DEPS_kubeclient := kubeclient common
DEPS_policy := policy common
DEPS_controller := controller kubeclient policy common
DEPS_e2e/kubesim := e2e/kubesim kubeclient common
DEPS_e2e/bench := e2e/bench e2e/kubesim controller kubeclient policy common

# Test-only dependencies: modules whose library and test support code
# (MODULE/test/*.c other than test_*.c) the module's tests may also use,
# e.g. a kubeclient test against kubesim's scripted server. Never linked
# into the module's library or programs.
TEST_DEPS_kubeclient := e2e/kubesim

# External libraries each module may use (DESIGN.md's table). A program,
# test or fuzz target links the union over the modules it links, so a call
# into a library its modules may not use fails to link: policy/ code (or a
# policy test) that calls uv_* or curl_* gets "undefined reference".
# common/ may use libyaml besides cJSON: the YAML tree shared by policy's
# config and kubeconfig belongs there, and libyaml is a pure parser (no
# I/O, clock or threads) that every module above common may use anyway.
LIBS_common := -lcjson -lyaml -lm
LIBS_kubeclient := -luv -lcurl -lyaml -lcrypto
LIBS_policy := -lyaml -lm
LIBS_controller := -luv -lhttp_parser
LIBS_e2e/kubesim := -luv -lcurl -lhttp_parser -lssl -lcrypto -lyaml -lm
LIBS_e2e/bench := -luv -lcurl

VARIANT ?= debug
# BUILD can be moved so that several builds of one tree do not share objects.
BUILD ?= build
B := $(BUILD)/$(VARIANT)

CC ?= cc
ifeq ($(origin CC),default)
CC := gcc
endif

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
        -Wmissing-prototypes -Wvla -Werror
# GF_LOG(lc, level, msg, "") is the documented way to log without extra
# fields; the empty format string is deliberate.
WARN += -Wno-format-zero-length
CPPFLAGS := -D_POSIX_C_SOURCE=200809L -I. $(EXTRA_CPPFLAGS)
CFLAGS := -std=c11 -g -O2 -fno-omit-frame-pointer $(WARN) $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
TEST_LDLIBS := -lcmocka

ifeq ($(VARIANT),asan)
CFLAGS += -O1 -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

# --- sources -----------------------------------------------------------------
lib_srcs = $(filter-out $(1)/main_%.c,$(wildcard $(1)/*.c))
main_srcs := $(foreach m,$(MODULES),$(wildcard $(m)/main_*.c))
# module_of(path/to/file.c): the module a source belongs to.
module_of = $(firstword $(foreach m,$(MODULES),$(if $(filter $(m)/%,$(1)),$(m))))
# uniq(list): the list without repeats, first occurrence kept.
uniq = $(if $(1),$(firstword $(1)) $(call uniq,$(filter-out $(firstword $(1)),$(1))))
# The modules a source links (dependents first), and what that means on
# the link line: their static libraries, then their external libraries.
mods_of = $(DEPS_$(call module_of,$(1)))
test_mods_of = $(call uniq,$(foreach d,$(TEST_DEPS_$(call module_of,$(1))),$(DEPS_$(d))) $(call mods_of,$(1)))
libs_of = $(foreach d,$(call mods_of,$(1)),$(B)/$(d)/lib.a)
test_libs_of = $(foreach d,$(call test_mods_of,$(1)),$(B)/$(d)/lib.a)
ext_of = $(call uniq,$(foreach d,$(1),$(LIBS_$(d))))
BINS := $(foreach s,$(main_srcs),$(B)/bin/$(patsubst main_%.c,%,$(notdir $(s))))

test_srcs := $(foreach m,$(MODULES),$(wildcard $(m)/test/test_*.c))
TESTS := $(patsubst %.c,$(B)/%,$(test_srcs))
fuzz_srcs := $(foreach m,$(MODULES),$(wildcard $(m)/fuzz/fuzz_*.c))
REPLAYS := $(patsubst %.c,$(B)/replay/%,$(fuzz_srcs))

all: $(BINS)

.PHONY: all deps check test unit asan valgrind fuzz fuzz-build fmt fmt-check \
        lint layering replay-corpus e2e demo bench chaos clean help

help:
	@echo "make deps      install missing Debian build dependencies"
	@echo "make           build programs into $(B)/bin"
	@echo "make test      unit + fuzz replay + asan + e2e (debug and asan); .ci/run adds lint, valgrind, fuzz"
	@echo "make check     include check, unit tests and fuzz-corpus replay (debug build)"
	@echo "make asan      unit tests under ASan+UBSan"
	@echo "make valgrind  unit tests under valgrind --leak-check=full"
	@echo "make fuzz      short, time-boxed libFuzzer runs (FUZZ_SECONDS=$(FUZZ_SECONDS))"
	@echo "make fmt|lint  format, or check format + layering + static analysis + banned calls"
	@echo "make layering  include check: DEPS/TEST_DEPS, common/ without libuv/libcurl, policy/ pure"
	@echo "make demo      hub + three simulated members, jobs, a partition, a summary"
	@echo "make bench     benchmarks under e2e/bench (figures, not assertions)"
	@echo "make chaos     the chaos suite: SEEDS='1 2 ..' (or SEED=N) x EVENTS faults each"

# --- compile -----------------------------------------------------------------
$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

define module_lib
$(B)/$(1)/lib.a: $(patsubst %.c,$(B)/%.o,$(call lib_srcs,$(1)))
	@mkdir -p $$(@D)
	rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach m,$(MODULES),$(eval $(call module_lib,$(m))))

define program
$(B)/bin/$(patsubst main_%.c,%,$(notdir $(1))): $(B)/$(1:.c=.o) $(call libs_of,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$< $(call libs_of,$(1)) $(call ext_of,$(call mods_of,$(1)))
endef
$(foreach s,$(main_srcs),$(eval $(call program,$(s))))

support_objs = $(patsubst %.c,$(B)/%.o,$(filter-out $(1)/test/test_%.c,$(wildcard $(1)/test/*.c)))
# A test links its module's support code and that of its TEST_DEPS.
test_support = $(foreach m,$(call module_of,$(1)) $(TEST_DEPS_$(call module_of,$(1))),$(call support_objs,$(m)))
define unit_test
$(B)/$(1:.c=): $(B)/$(1:.c=.o) $(call test_support,$(1)) $(call test_libs_of,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$< $(call test_support,$(1)) $(call test_libs_of,$(1)) $(call ext_of,$(call test_mods_of,$(1))) $$(TEST_LDLIBS)
endef
$(foreach t,$(test_srcs),$(eval $(call unit_test,$(t))))

# Corpus replay: the fuzz target linked with a plain main() that feeds it
# every file of its corpus, so every build replays what the fuzzer found.
define replay
$(B)/replay/$(1:.c=): $(B)/$(1:.c=.o) $(B)/common/fuzz/replay.o $(call libs_of,$(1))
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$< $(B)/common/fuzz/replay.o $(call libs_of,$(1)) $(call ext_of,$(call mods_of,$(1)))
endef
$(foreach f,$(fuzz_srcs),$(eval $(call replay,$(f))))

-include $(shell find $(B) -name '*.d' 2>/dev/null)
-include $(wildcard $(addsuffix /module.mk,$(MODULES)))

# --- tests -------------------------------------------------------------------
# Tests run with the project's own programs on PATH-independent paths:
# GF_BIN tells tests and scripts where this variant's programs are.
export GF_BIN := $(abspath $(B)/bin)
export GF_SHARED ?= $(abspath ../shared)

# Runners run every binary, then fail if any failed, naming them all (one
# failure must not hide the others).
run_all = failed=""; for t in $(1); do echo "== $(2)$$t"; \
	  $(3) $$t $(4) || failed="$$failed $$t"; done; \
	  if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

unit: $(TESTS) $(BINS)
	@$(call run_all,$(TESTS))

# A replayer takes its corpus directory: MODULE/fuzz/corpus/NAME/ for
# $(B)/replay/MODULE/fuzz/fuzz_NAME.
corpus_of = $$(r=$$t; src=$${r\#$(B)/replay/}; echo $$(dirname $$src)/corpus/$$(basename $$src | sed 's/^fuzz_//'))
replay-corpus: $(REPLAYS)
	@$(call run_all,$(REPLAYS),replay ,,$(corpus_of))

check: layering unit replay-corpus

# Include rules per module (.ci/layering): DEPS and TEST_DEPS read from the
# sources, common/ free of libuv and libcurl, policy/ pure.
layering:
	@rc=0; $(foreach m,$(MODULES),.ci/layering $(m) "$(DEPS_$(m))" "$(TEST_DEPS_$(m))" || rc=1;) exit $$rc

asan:
	$(MAKE) VARIANT=asan check

VALGRIND := valgrind --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=1 -q \
            --suppressions=.ci/valgrind.supp
valgrind: $(TESTS)
	@$(call run_all,$(TESTS),valgrind ,GF_UNDER_VALGRIND=1 $(VALGRIND))

E2E_SKIP ?=
# A script that mostly waits runs in the background while the scripts of
# E2E_BESIDE run one by one, so that its idle time overlaps their work.
# Only scripts whose assertions are about answers, never about time, go
# in either list: each adds CPU load to the other. The real-server
# kubeclient test sits idle for most of its 155 s quiet watch; beside it
# run the other real-server scripts (RBAC, the differential cases,
# gpufedctl, the QuotaLease CRD, the hub's leases), each as long as it
# takes on a busy machine. The background script's output is printed when it ends; a
# failure in the foreground stops it (SIGTERM: it cleans up) and fails.
E2E_BACKGROUND := e2e/test_realk8s_kubeclient.sh
E2E_BESIDE := e2e/test_hub_realk8s.sh e2e/test_manifests.sh \
              e2e/test_quotalease_crd.sh e2e/test_realk8s_diff.sh \
              e2e/test_realk8s_gpufedctl.sh \
              e2e/test_realk8s_kubesim_diff_cel_jobs.sh
e2e_all = $(filter-out $(E2E_SKIP),$(sort $(wildcard e2e/test_*.sh)))
e2e_bg = $(filter $(E2E_BACKGROUND),$(e2e_all))
e2e_beside = $(if $(e2e_bg),$(filter $(E2E_BESIDE),$(e2e_all)))
e2e: $(BINS)
	@set -e; T0=$$(date +%s); logs=$(B)/e2e-logs; mkdir -p $$logs; \
	run() { t0=$$(date +%s); echo "== $$1"; bash $$1; echo "== $$1: $$(( $$(date +%s) - t0 ))s"; }; \
	bg=""; trap 'rc=$$?; for p in $$bg; do kill $$p 2>/dev/null; wait $$p || :; done; exit $$rc' EXIT; \
	for s in $(e2e_bg); do \
	  echo "== $$s: started in the background, beside: $(e2e_beside)"; \
	  bash $$s >$$logs/$$(basename $$s .sh).log 2>&1 & bg="$$bg $$!"; done; \
	for s in $(e2e_beside); do run $$s; done; \
	rc=0; set -- $$bg; for s in $(e2e_bg); do \
	  wait $$1 || rc=$$?; echo "== $$s (in the background)"; \
	  cat $$logs/$$(basename $$s .sh).log; \
	  echo "== $$s: $$(( $$(date +%s) - T0 ))s, rc $$rc"; shift; [ $$rc = 0 ]; done; bg=""; \
	for s in $(filter-out $(e2e_bg) $(e2e_beside),$(e2e_all)); do run $$s; done; \
	echo "== e2e ($(VARIANT)): $$(( $$(date +%s) - T0 ))s in all"

# The end-to-end scripts run twice: on the debug programs, then on the
# ASan+UBSan ones (kubesim, gpufedctl, gpufed and the benches under real
# clients). Long scripts and the real-server ones run once, on the ASan
# build, to keep `make test` within its 25 minutes on 2 cores: the
# real-server kubeclient test (a watch left quiet past the old 150 s idle
# limit), the manifests' RBAC on both servers, the differential cases
# against the real server (API, CEL, Jobs, impersonation), the partition
# test and the loans' term and partitions (their figures are timing), the
# demo's fast mode, the quick chaos run, the reclaim, drain, loan and
# redirect tests and each fault alone (about ten minutes of Jobs running
# out their durations; the redirect test ran on both builds until make
# test outgrew its budget), and the agent's, the leader election's and
# kubesim's own kubectl and Kueue-lite scripts (about 95 s on the debug
# build: the ASan build checks more in the same steps).
# `make e2e` runs everything.
E2E_ASAN_ONLY := e2e/test_realk8s_kubeclient.sh e2e/test_manifests.sh \
                 e2e/test_agent.sh e2e/test_hub_leader.sh \
                 e2e/test_kubesim_kubectl.sh e2e/test_kubesim_kueue.sh \
                 e2e/test_realk8s_diff.sh e2e/test_hub_partition.sh \
                 e2e/test_hub_loan_faults.sh \
                 e2e/test_demo_quick.sh e2e/test_chaos_quick.sh \
                 e2e/test_realk8s_kubesim_diff_cel_jobs.sh \
                 e2e/test_hub_reclaim.sh \
                 e2e/test_faults_single.sh e2e/test_hub_drain.sh \
                 e2e/test_hub_loan.sh e2e/test_hub_redirect.sh
# The ASan unit tests (CPU) run beside the debug build's e2e scripts
# (mostly waiting on Jobs and watches), their output kept in a log and
# printed when they end: about a minute and a half off make test.
test: check
	@set -e; mkdir -p $(BUILD); log=$(BUILD)/asan-check.log; \
	echo "== make asan: beside the debug e2e, output in $$log"; \
	$(MAKE) asan >$$log 2>&1 & a=$$!; \
	trap 'kill $$a 2>/dev/null || :' EXIT; \
	e=0; $(MAKE) e2e E2E_SKIP="$(E2E_ASAN_ONLY)" || e=$$?; \
	r=0; wait $$a || r=$$?; trap - EXIT; \
	echo "== make asan (beside the debug e2e): rc $$r"; cat $$log; \
	[ $$e = 0 ] && [ $$r = 0 ]
	$(MAKE) VARIANT=asan e2e

# --- fuzz --------------------------------------------------------------------
FUZZ_SECONDS ?= 20
FUZZ_CC := clang
fuzz-build:
	$(MAKE) VARIANT=fuzz CC=$(FUZZ_CC) \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -Wno-unused-command-line-argument" \
	  fuzz-bins
FUZZERS := $(patsubst %.c,$(B)/fuzzer/%,$(fuzz_srcs))
define fuzzer
$(B)/fuzzer/$(1:.c=): $(B)/$(1:.c=.o) $(B)/common/fuzz/init.o $(call libs_of,$(1))
	@mkdir -p $$(@D)
	$$(CC) -fsanitize=fuzzer,address,undefined -o $$@ $$< $(B)/common/fuzz/init.o $(call libs_of,$(1)) $(call ext_of,$(call mods_of,$(1)))
endef
$(foreach f,$(fuzz_srcs),$(eval $(call fuzzer,$(f))))
fuzz-bins: $(FUZZERS)
fuzz: fuzz-build
	@set -e; for f in $(fuzz_srcs); do \
	  name=$$(basename $$f .c | sed 's/^fuzz_//'); dir=$$(dirname $$f)/corpus/$$name; \
	  found=$(BUILD)/fuzz/found/$$name; mkdir -p $$found; \
	  echo "== fuzz $$f for $(FUZZ_SECONDS)s"; \
	  $(BUILD)/fuzz/fuzzer/$${f%.c} -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
	    -artifact_prefix=$(BUILD)/fuzz/ $$found $$dir; done

# --- style -------------------------------------------------------------------
C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
fmt:
	clang-format -i $(C_FILES)
fmt-check:
	clang-format --dry-run -Werror $(C_FILES)
BANNED := '\b(sprintf|strcpy|strcat|strtok|atoi|atol|gets|sscanf|system|alloca)[[:space:]]*\('
lint: fmt-check layering
	@if git grep -nE $(BANNED) -- '*.c' '*.h'; then \
	  echo "lint: banned function (STYLE.md §9)"; exit 1; fi
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --inline-suppr --suppress=missingIncludeSystem -I. $(MODULES)
	clang-tidy --quiet $(filter %.c,$(C_FILES)) -- $(CPPFLAGS) -std=c11

# --- dependencies ------------------------------------------------------------
# Tools (kubectl, clang, valgrind) count as present when they are on PATH,
# however they were installed.
DEB_DEPS := build-essential pkg-config libuv1-dev libcurl4-openssl-dev \
            libcjson-dev libyaml-dev libssl-dev libhttp-parser-dev \
            libcmocka-dev python3-kubernetes python3-yaml etcd-server kubectl clang \
            valgrind curl jq
deps:
	@missing=""; for p in $(DEB_DEPS); do \
	  case $$p in kubectl|clang|valgrind|curl|jq) \
	    command -v $$p >/dev/null 2>&1 && continue;; esac; \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi

demo: deps
	@$(MAKE) all
	@bash e2e/demo.sh

bench: all
	@set -e; for s in $(sort $(wildcard e2e/bench/bench_*.sh)); do echo "== $$s"; bash $$s; done

# The chaos suite (docs/chaos.md): one seeded run per seed, each with
# EVENTS fault events; the default is 20 seeds x 50 = 1,000 fault events
# (about an hour on 2 cores). SEED=N replays one seed's schedule. Every
# seed runs; the failing ones are named at the end.
SEEDS ?= $(shell seq 1 20)
EVENTS ?= 50
chaos: $(BINS)
	@failed=""; for s in $(or $(SEED),$(SEEDS)); do \
	  echo "== chaos seed $$s ($(EVENTS) fault events)"; \
	  bash e2e/chaos/run.sh --seed $$s --events $(EVENTS) || failed="$$failed $$s"; \
	done; if [ -n "$$failed" ]; then echo "chaos: FAILED seeds:$$failed"; exit 1; fi

clean:
	rm -rf build
