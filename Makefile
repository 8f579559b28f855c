# bellows - build, test and demo.
#
#   make demo    install what is missing, build, run the main job end to end
#   make test    install what is missing, build, run unit tests (also under ASan/UBSan),
#                MPI tests, and the Bats suite (with a real local SLURM cluster)
#   make         build only (build/bin/*)          make help   all targets
#
# Dependencies come from Debian packages (make deps) and, for reference peers used by tests,
# from PyPI into a virtualenv kept outside the clone (make venv).

SHELL := /bin/bash
.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

VERSION := 0.1.0
BUILD   ?= build
PREFIX  ?= /usr/local
JOBS    ?= 2

# --- Debian packages this tree needs (make deps installs the missing ones) ------------------
DEB_PACKAGES := g++ make pkg-config git \
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev hdf5-tools \
  libboost-program-options-dev libzstd-dev zstd zlib1g-dev nlohmann-json3-dev \
  libcld2-dev libpcre2-dev libutf8proc-dev libxxhash-dev libsimdjson-dev libsentencepiece-dev \
  libgtest-dev bats bats-assert bats-support bats-file \
  libopenblas-openmp-dev python3-torch python3-matplotlib \
  slurm-wlm munge python3 python3-venv time cmake

# --- toolchain and flags ---------------------------------------------------------------------
CXX  := g++
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
CUDA ?= $(if $(NVCC),1,0)
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))

# Third-party headers come in as -isystem so that -Werror applies to our code only.
HDF5_CFLAGS := $(shell pkg-config --cflags hdf5-openmpi 2>/dev/null)
HDF5_LIBS   := $(shell pkg-config --libs hdf5-openmpi 2>/dev/null)
DEP_CFLAGS  := $(patsubst -I%,-isystem %,$(HDF5_CFLAGS))
# OpenBLAS built for OpenMP, named explicitly (not through the libblas alternatives), so that
# BLAS and the backend's own loops share one OpenMP thread pool.
BLAS_DIR    := /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_CFLAGS := -isystem /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIBS   := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas

WARN     := -Wall -Wextra -Werror
CXXSTD   := -std=c++20
OPT      ?= -O2 -g
CPPFLAGS := -Ilibshared -I$(BUILD)/gen $(DEP_CFLAGS) $(BLAS_CFLAGS) -DOMPI_SKIP_MPICXX=1 -MMD -MP
CXXFLAGS := $(CXXSTD) $(OPT) $(WARN) -pthread -fopenmp
LDLIBS   := $(HDF5_LIBS) -lboost_program_options -lzstd -lz -lcld2 -lpcre2-8 -lutf8proc -lsimdjson -lsentencepiece \
            $(BLAS_LIBS) -fopenmp -pthread
ifeq ($(CUDA),1)
LDLIBS   += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt
# GPU code for these compute capabilities (90: H100/H200), plus PTX of the last for newer cards.
# An A100 cluster builds with CUDA_ARCHS="80 90"; every extra one adds ~1 min to the build.
CUDA_ARCHS ?= 90
NVCC_ARCH := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
             -gencode arch=compute_$(lastword $(CUDA_ARCHS)),code=compute_$(lastword $(CUDA_ARCHS))
NVCCFLAGS := -std=c++20 -O2 -Ilibshared -Xcompiler -Wall,-Wextra,-Werror --Werror all-warnings $(NVCC_ARCH)
endif

# -g1 (line tables only) overrides -g in the sanitizer build: its reports keep file:line, and it
# compiles a quarter faster (make test builds libshared twice).
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g1

# --- sources ---------------------------------------------------------------------------------
# libshared/cuda/X.cu is compiled by nvcc when CUDA=1; libshared/cuda/X_none.cpp stands in for it
# otherwise (and always in the sanitizer build, which does not link CUDA).
CUDA_NONE_SRCS := $(wildcard libshared/cuda/*_none.cpp)
CU_SRCS  := $(wildcard libshared/cuda/*.cu)
LIB_SRCS := $(filter-out $(CUDA_NONE_SRCS),$(shell find libshared -name '*.cpp' -not -path 'libshared/tests/*'))
LIB_SRCS_NOCUDA := $(LIB_SRCS) $(CUDA_NONE_SRCS)
SCHEMAS  := $(sort $(wildcard schemas/*.json))
GEN_SCHEMAS := $(BUILD)/gen/schemas_embedded.cpp
TOOLS    := $(notdir $(patsubst %/main.cpp,%,$(wildcard tools/*/main.cpp)))
TEST_SRCS := $(wildcard libshared/tests/*.cpp)
MPI_TEST_SRCS := $(wildcard libshared/tests/mpi/*.cpp)
HELPER_SRCS := $(wildcard tests/helpers/*.cpp)

LIB_OBJS := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/gen/schemas_embedded.o
ifeq ($(CUDA),1)
LIB_OBJS += $(patsubst %.cu,$(BUILD)/obj/%.cu.o,$(CU_SRCS))
else
LIB_OBJS += $(patsubst %.cpp,$(BUILD)/obj/%.o,$(CUDA_NONE_SRCS))
endif
ASAN_OBJS := $(patsubst %.cpp,$(BUILD)/asan/%.o,$(LIB_SRCS_NOCUDA)) $(BUILD)/asan/gen/schemas_embedded.o

LIB       := $(BUILD)/lib/libshared.a
ASAN_LIB  := $(BUILD)/lib/libshared-asan.a
BINS      := $(addprefix $(BUILD)/bin/,$(TOOLS))
UNIT      := $(BUILD)/tests/unit_tests
UNIT_ASAN := $(BUILD)/tests/unit_tests_asan
MPI_UNIT  := $(BUILD)/tests/mpi_tests
HELPERS   := $(patsubst tests/helpers/%.cpp,$(BUILD)/tests/%,$(HELPER_SRCS))

# --- Python reference peers (PyPI) in a venv outside the clone, keyed by the requirements ----
PY_REQ   := tests/python/requirements.txt
REQ_HASH := $(shell sha256sum $(PY_REQ) 2>/dev/null | cut -c1-12)
VENV     ?= $(HOME)/.cache/bellows/venv-$(REQ_HASH)
SYS_PY   := /usr/bin/python3
# The runtimes that consume ckpt-convert's output (transformers on Debian's torch, llama.cpp,
# gguf) in a second venv: the transformers that still runs on torch 1.13 needs an older
# tokenizers than the tokenizer reference tests pin (tests/python/requirements-hf.txt).
HF_REQ   := tests/python/requirements-hf.txt
HF_VENV  ?= $(HOME)/.cache/bellows/hf-venv-$(shell sha256sum $(HF_REQ) 2>/dev/null | cut -c1-12)

.PHONY: gpu-bundle test-gpu fuzz fuzz-toolchain bench-pretrain bench-parallel bench-lora bench-dpo plot all deps venv hf-venv test test-all unit unit-asan mpi-unit bats demo demo-run install clean help bench-venv bench-curate \
        bench-venv-tokenize bench-tokenize bench-convert

all: $(BINS) $(HELPERS)

help:
	@echo "make demo | test | all | deps | venv | hf-venv | install PREFIX=... | clean | plot RUN=dir | bench-curate | bench-tokenize | bench-pretrain | bench-parallel | bench-lora | bench-dpo | bench-convert [BENCH_MB=50 BENCH_ARGS=...] | fuzz [FUZZ_SECONDS=120] | gpu-bundle | test-gpu (on the GPU machine)"
	@echo "variables: CUDA=0|1 (default: 1 when nvcc is found), CUDA_ARCHS=\"80 90\" (GPU code; default 90), BUILD=dir, VENV=dir, HF_VENV=dir, JOBS=n"

# --- dependencies ----------------------------------------------------------------------------
# Installs only what is missing (dpkg first; apt-get update only when something is missing).
deps:
	@missing=""; for p in $(or $(DEPS_LIST),$(DEB_PACKAGES)); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else \
	  echo "deps: not root; run: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing" >&2; exit 2; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

venv: $(VENV)/.complete

$(VENV)/.complete: $(PY_REQ)
	@echo "venv: $(VENV)"
	@mkdir -p $(dir $(VENV))
	@test -x $(VENV)/bin/python || $(SYS_PY) -m venv --system-site-packages $(VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip install -q -r $(PY_REQ)
	@touch $@

hf-venv: $(HF_VENV)/.complete

# llama-cpp-python is a source distribution: pip compiles llama.cpp (cmake, several minutes on
# two cores) once and keeps the wheel in its cache.
$(HF_VENV)/.complete: $(HF_REQ)
	@echo "hf-venv: $(HF_VENV)"
	@mkdir -p $(dir $(HF_VENV))
	@test -x $(HF_VENV)/bin/python || $(SYS_PY) -m venv --system-site-packages $(HF_VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(HF_VENV)/bin/pip install -q -r $(HF_REQ)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(HF_VENV)/bin/pip install -q --no-deps $$(sed -n 's/^#no-deps: *//p' $(HF_REQ))
	@touch $@

# ggml's quantisation is matched bit for bit only without fused multiply-add (reference order).
$(BUILD)/obj/libshared/formats/quant.o $(BUILD)/asan/libshared/formats/quant.o: CXXFLAGS += -ffp-contract=off

# --- generated sources -----------------------------------------------------------------------
GIT_HASH := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)

# Rewritten only when the content changes, so a new commit recompiles one file.
$(BUILD)/gen/build_info.hpp: FORCE
	@mkdir -p $(dir $@)
	@printf '#pragma once\n#define BELLOWS_VERSION "%s"\n#define BELLOWS_GIT_HASH "%s"\n' "$(VERSION)" "$(GIT_HASH)" > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(GEN_SCHEMAS): $(SCHEMAS) libshared/io/embed_schemas.sh
	@mkdir -p $(dir $@)
	libshared/io/embed_schemas.sh $@ $(SCHEMAS)

FORCE:

# --- compile ---------------------------------------------------------------------------------
# The CPU kernels' second build, for processors with AVX2 and FMA (chosen at run time).
$(BUILD)/obj/libshared/nn/backend_cpu_v3.o $(BUILD)/asan/libshared/nn/backend_cpu_v3.o: CXXFLAGS += -march=x86-64-v3
# Both builds without trapping math: GCC then if-converts the clamps and inlines the floor of
# fast_expf, so the loops over exp (SiLU, softmax, cross-entropy) vectorise; with the default
# -ftrapping-math they ran one element at a time ("control flow in loop"). No result changes
# but the summation order of the reductions that now vectorise (the kernels never trap).
CPU_KERNEL_OBJS := $(foreach d,obj asan,$(foreach v,base v3,$(BUILD)/$(d)/libshared/nn/backend_cpu_$(v).o))
$(CPU_KERNEL_OBJS): CXXFLAGS += -fno-trapping-math

$(BUILD)/obj/%.o: %.cpp | $(BUILD)/gen/build_info.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/gen/schemas_embedded.o: $(GEN_SCHEMAS)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(BUILD)/obj/libshared/core/version.o: $(BUILD)/gen/build_info.hpp

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(BUILD)/asan/%.o: %.cpp | $(BUILD)/gen/build_info.hpp
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/asan/gen/schemas_embedded.o: $(GEN_SCHEMAS)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(SAN_FLAGS) -c $< -o $@

$(BUILD)/asan/libshared/core/version.o: $(BUILD)/gen/build_info.hpp

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

$(ASAN_LIB): $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

# --- link ------------------------------------------------------------------------------------
$(BUILD)/bin/%: $(BUILD)/obj/tools/%/main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/helpers/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $< $(LIB) $(LDLIBS) -o $@

$(UNIT): $(patsubst %.cpp,$(BUILD)/obj/%.o,$(TEST_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(LIB) -lgtest -lgtest_main $(LDLIBS) -o $@

$(UNIT_ASAN): $(patsubst %.cpp,$(BUILD)/asan/%.o,$(TEST_SRCS)) $(ASAN_LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(SAN_FLAGS) $(filter %.o,$^) $(ASAN_LIB) -lgtest -lgtest_main $(filter-out -L$(CUDA_HOME)/lib64 -lcudart_static,$(LDLIBS)) -o $@

$(MPI_UNIT): $(patsubst %.cpp,$(BUILD)/obj/%.o,$(MPI_TEST_SRCS)) $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) $(filter %.o,$^) $(LIB) -lgtest $(LDLIBS) -o $@

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- tests -----------------------------------------------------------------------------------
# `make test` installs first, then re-enters make so that flags probed from the installed
# packages (pkg-config, nvcc) are read afresh.
test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT) $(UNIT_ASAN) $(MPI_UNIT)
	@$(MAKE) --no-print-directory venv hf-venv
	@$(MAKE) --no-print-directory test-all

test-all:
	BUILD=$(BUILD) VENV=$(VENV) HF_VENV=$(HF_VENV) tests/run-all.sh

unit: $(UNIT)
	$(UNIT)

unit-asan: $(UNIT_ASAN)
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=tests/lsan.supp $(UNIT_ASAN)

mpi-unit: $(MPI_UNIT)
	tests/mpirun.sh -np 4 $(MPI_UNIT)

bats: all venv hf-venv
	BUILD=$(BUILD) VENV=$(VENV) HF_VENV=$(HF_VENV) tests/run-all.sh --bats-only

# --- the GPU machine ---------------------------------------------------------------------------
# gpu-bundle: the tools and tests with their shared libraries, for a GPU machine that has the
# driver and CUDA but none of our Debian libraries; test-gpu runs there, from the unpacked bundle:
#   tar xzf build/gpu-bundle.tgz -C /tmp && /tmp/gpu-bundle/test-gpu.sh      (or: make test-gpu)
GPU_BUNDLE ?= $(BUILD)/gpu-bundle
gpu-bundle:
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT) $(MPI_UNIT)
	tests/gpu/make-bundle.sh $(BUILD) $(GPU_BUNDLE)

test-gpu:
	@test -x $(GPU_BUNDLE)/test-gpu.sh || { test -f $(GPU_BUNDLE).tgz && tar -C $(dir $(GPU_BUNDLE)) -xzf $(GPU_BUNDLE).tgz; } || \
	  { echo "no $(GPU_BUNDLE): make gpu-bundle on the development machine and carry $(GPU_BUNDLE).tgz"; exit 2; }
	$(GPU_BUNDLE)/test-gpu.sh

# --- demo ------------------------------------------------------------------------------------
demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory demo-run

demo-run:
	BUILD=$(BUILD) tests/demo.sh

# --- benchmarks (never part of `make test`) --------------------------------------------------
# The peers (datasketch, datatrove) live in a venv of their own, keyed by their requirements, also
# outside the clone; it is not the test venv (datatrove needs numpy 2).
BENCH_REQ  := bench/curate/requirements.txt
BENCH_VENV ?= $(HOME)/.cache/bellows/bench-venv-$(shell sha256sum $(BENCH_REQ) 2>/dev/null | cut -c1-12)
BENCH_MB   ?= 50
BENCH_ARGS ?=

bench-venv: $(BENCH_VENV)/.complete

$(BENCH_VENV)/.complete: $(BENCH_REQ)
	@echo "bench-venv: $(BENCH_VENV)"
	@mkdir -p $(dir $(BENCH_VENV))
	@test -x $(BENCH_VENV)/bin/python || $(SYS_PY) -m venv $(BENCH_VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BENCH_VENV)/bin/pip install -q -r $(BENCH_REQ)
	@touch $@

# curate-dedup vs datasketch (MinHash stage) and datatrove (whole pipeline), one core each; writes
# bench/curate/results.{json,md}. Run on a quiet machine: make bench-curate BENCH_MB=50 BENCH_ARGS='--repeat 3'
bench-curate:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory bench-venv
	BUILD=$(BUILD) BENCH_VENV=$(BENCH_VENV) bench/curate/run.sh --mb $(BENCH_MB) $(BENCH_ARGS)

BENCH_TOK_REQ  := bench/tokenize/requirements.txt
BENCH_TOK_VENV ?= $(HOME)/.cache/bellows/bench-venv-$(shell sha256sum $(BENCH_TOK_REQ) 2>/dev/null | cut -c1-12)

bench-venv-tokenize: $(BENCH_TOK_VENV)/.complete

$(BENCH_TOK_VENV)/.complete: $(BENCH_TOK_REQ)
	@echo "bench-venv-tokenize: $(BENCH_TOK_VENV)"
	@mkdir -p $(dir $(BENCH_TOK_VENV))
	@test -x $(BENCH_TOK_VENV)/bin/python || $(SYS_PY) -m venv $(BENCH_TOK_VENV)
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(BENCH_TOK_VENV)/bin/pip install -q -r $(BENCH_TOK_REQ)
	@touch $@

# tokenize-pack vs tiktoken (+ HF tokenizers), one core each, packing overhead, 1 vs 2 MPI ranks;
# writes bench/tokenize/results.{json,md}. Run on a quiet machine: make bench-tokenize BENCH_MB=50
bench-tokenize:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory bench-venv-tokenize
	BUILD=$(BUILD) BENCH_VENV=$(BENCH_TOK_VENV) bench/tokenize/run.sh --mb $(BENCH_MB) $(BENCH_ARGS)

# --- fuzzing (never part of `make test`) -----------------------------------------------------
# Every fuzz/NAME_fuzz.cpp is a libFuzzer harness for a parser in formats/. `make fuzz` builds them
# with clang (libFuzzer, ASan, UBSan), runs each for FUZZ_SECONDS on a scratch copy of
# fuzz/corpus/NAME/, then merges the inputs that reached new code back into that corpus
# (fuzz/README.md). A finding stops the run and leaves its input in $(BUILD)/fuzz/NAME-crash-*.
FUZZ_CXX        ?= clang++
FUZZ_SECONDS    ?= 120
FUZZ_MAX_LEN    := 65536
FUZZ_CORPUS_MAX ?= 300
FUZZ_FLAGS      := -std=c++20 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined $(WARN)
FUZZ_CPPFLAGS   := -Ilibshared -I$(BUILD)/gen $(DEP_CFLAGS) $(BLAS_CFLAGS) -DOMPI_SKIP_MPICXX=1 -MMD -MP
# All of formats/ goes into one archive, so each harness links just the objects it reaches
# (convert.cpp needs the whole library: it is compiled, checked, and never pulled in).
FUZZ_LIB_SRCS   := $(wildcard libshared/formats/*.cpp) libshared/core/error.cpp
FUZZ_LIB        := $(BUILD)/fuzz/libformats-fuzz.a
FUZZ_BINS       := $(patsubst fuzz/%.cpp,$(BUILD)/fuzz/%,$(wildcard fuzz/*_fuzz.cpp))

# clang and its fuzzer/sanitizer runtime, installed like make deps (only make fuzz needs them).
FUZZ_DEB_PACKAGES := clang libclang-rt-14-dev
fuzz-toolchain:
	@$(MAKE) --no-print-directory deps DEPS_LIST="$(FUZZ_DEB_PACKAGES)"
	@command -v $(FUZZ_CXX) >/dev/null || { echo "fuzz: $(FUZZ_CXX) not found" >&2; exit 2; }

$(BUILD)/fuzz/obj/%.o: %.cpp | $(BUILD)/gen/build_info.hpp fuzz-toolchain
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CPPFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(patsubst %.cpp,$(BUILD)/fuzz/obj/%.o,$(FUZZ_LIB_SRCS))
	@rm -f $@
	ar rcs $@ $^

# Kept, so that relinking after a library change does not recompile the harness.
.PRECIOUS: $(BUILD)/fuzz/obj/%.o

$(BUILD)/fuzz/%_fuzz: $(BUILD)/fuzz/obj/fuzz/%_fuzz.o $(FUZZ_LIB)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@

# Merging adds only inputs that reach code the corpus does not (edges; -use_counters=0, or every
# new hit count would add a file); past FUZZ_CORPUS_MAX files the corpus is minimised again,
# keeping the hand-written seeds (libFuzzer names its own inputs by SHA-1, without a dot).
fuzz: $(FUZZ_BINS)
	@set -e; for bin in $(FUZZ_BINS); do \
	  name=$$(basename $$bin _fuzz); corpus=fuzz/corpus/$$name; work=$(BUILD)/fuzz/work-$$name; \
	  mkdir -p $$corpus; rm -rf $$work; mkdir -p $$work; cp -r $$corpus/. $$work/; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
	  $$bin -max_len=$(FUZZ_MAX_LEN) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/$$name- $$work; \
	  $$bin -merge=1 -use_counters=0 -max_len=$(FUZZ_MAX_LEN) $$corpus $$work 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true; \
	  if [ $$(ls $$corpus | wc -l) -gt $(FUZZ_CORPUS_MAX) ]; then \
	    min=$(BUILD)/fuzz/min-$$name; rm -rf $$min; mkdir -p $$min; \
	    find $$corpus -maxdepth 1 -type f -name '*.*' -exec cp {} $$min/ \; ; \
	    $$bin -merge=1 -use_counters=0 -max_len=$(FUZZ_MAX_LEN) $$min $$corpus >/dev/null 2>&1; \
	    rm -rf $$corpus; mv $$min $$corpus; \
	  fi; \
	  echo "fuzz: $$name corpus: $$(ls $$corpus | wc -l) files"; \
	done

# --- install ---------------------------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/bellows/sbatch $(DESTDIR)$(PREFIX)/share/bellows/schemas
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 tools/plot_metrics.py $(DESTDIR)$(PREFIX)/bin/bellows-plot-metrics
	install -m 644 sbatch/*.sbatch $(DESTDIR)$(PREFIX)/share/bellows/sbatch/
	install -m 755 sbatch/pipeline.sh $(DESTDIR)$(PREFIX)/share/bellows/sbatch/
	ln -sf ../share/bellows/sbatch/pipeline.sh $(DESTDIR)$(PREFIX)/bin/bellows-pipeline
	install -m 644 $(SCHEMAS) $(DESTDIR)$(PREFIX)/share/bellows/schemas/

# pretrain vs PyTorch eager (Debian's python3-torch) on the same shards, both pinned to cores 0,1; writes
# bench/pretrain/results.{json,md}. Run on a quiet machine: make bench-pretrain BENCH_ARGS='--steps 20 --repeat 3 --perf'
bench-pretrain:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	BUILD=$(BUILD) JOBS=$(JOBS) PY=$(VENV)/bin/python bench/pretrain/run.sh $(BENCH_ARGS)

# pretrain on 1 and 2 ranks (scaling, and the share of the step in communication for --dp 2, --tp 2, --pp 2,
# --dp 2 --zero 1) beside PyTorch DDP (gloo), one rank per core; writes bench/parallel/results.{json,md}.
# Run on a quiet machine: make bench-parallel BENCH_ARGS='--steps 20 --repeat 2'
bench-parallel:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	BUILD=$(BUILD) JOBS=$(JOBS) PY=$(VENV)/bin/python bench/parallel/run.sh $(BENCH_ARGS)

# lora-tune against full SFT and pretraining on the same model (tokens/s, peak RSS); writes
# bench/lora/results.{json,md}. Run on a quiet machine: make bench-lora BENCH_ARGS='--steps 20 --repeat 2'
bench-lora:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	BUILD=$(BUILD) JOBS=$(JOBS) PY=$(VENV)/bin/python bench/lora/run.sh $(BENCH_ARGS)

# dpo-align's step time, tokens/s and peak RSS with each reference (a LoRA policy's base with the adapters off, a
# frozen copy of the full model, precomputed log-probabilities and their one-off cost) on bench/lora's model; writes
# bench/dpo/results.{json,md}. Run on a quiet machine: make bench-dpo (BENCH_ARGS='--steps 30 --repeat 3 --pairs 512')
bench-dpo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory venv
	BUILD=$(BUILD) JOBS=$(JOBS) PY=$(VENV)/bin/python bench/dpo/run.sh $(BENCH_ARGS)

# A pretrain run's loss / learning-rate / throughput chart: make plot RUN=runs/small
plot:
	@test -n "$(RUN)" || { echo "usage: make plot RUN=RUNDIR (a pretrain run directory)"; exit 2; }
	/usr/bin/python3 tools/plot_metrics.py $(RUN)/metrics.jsonl -o $(RUN)/metrics.png

clean:
	rm -rf $(BUILD)

# ckpt-convert's MB/s beside dd's on the same disk (bench/convert/results.md).
bench-convert:
	@$(MAKE) --no-print-directory hf-venv
	BUILD=$(BUILD) HF_VENV=$(HF_VENV) bench/convert/run.sh $(BENCH_ARGS)
